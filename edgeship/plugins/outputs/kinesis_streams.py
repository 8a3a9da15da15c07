"""kinesis_streams output: records into an Amazon Kinesis data stream (out_kinesis_streams).

Kept from Fluent Bit 5.1.1:
- ``region`` and ``stream`` are required; ``time_key`` and ``log_key`` cannot be used
  together. Records rendered as ``edgeship.plugins.outputs._kinesis`` says (JSON, or
  ``log_key``'s value; ``time_key`` / ``time_key_format``; a newline after each;
  ``simple_aggregation``; ``compression`` gzip, zstd or snappy of each record).
- ``PutRecords`` (JSON 1.1, ``X-Amz-Target: Kinesis_20131202.PutRecords``, SigV4 for
  ``kinesis``), base64 ``Data``, at most 500 records a request; a record of 1,048,556 bytes
  or more (1 MiB less 20 bytes for the partition key) is dropped with a warning.
- ``PartitionKey`` as Fluent Bit builds it: 10 random characters chosen once per output,
  then the tag's djb2 hash modulo 7919, then a number below 7919 that changes with every
  record (Fluent Bit derives it from the clock; here it is random), so records spread over
  the shards.
- ``endpoint`` (default ``kinesis.<region>.amazonaws.com``, port 443, TLS on),
  ``sts_endpoint``, ``role_arn``, ``external_id``, ``profile`` (credentials:
  ``edgeship.net.aws``), ``auto_retry_requests``, net.* and tls.* options, Workers 1.

Differences (safer on purpose):
- When ``FailedRecordCount`` is above 0, only the records Kinesis did not take are sent
  again on the retry, and batches already accepted are not sent again (Fluent Bit resends
  the whole chunk, duplicating what was delivered).
- A request holds at most 5 MiB (AWS's documented PutRecords limit; Fluent Bit fills 10 MiB).
- Errors: throttling (``ProvisionedThroughputExceededException``, ``LimitExceededException``),
  5xx, no answer, no credentials, an answer that cannot be read, or a missing stream
  (``ResourceNotFoundException``) RETRY; 401/403 fetch credentials again and RETRY; other
  4xx are ERROR with the service's message.
- ``log_key`` naming a map or number sends its JSON (Fluent Bit strips its first and last
  characters). The records dropped as too large are counted in one warning per chunk.
- A compressed record still too large is dropped (Fluent Bit cuts its input until it fits);
  ``compression arrow`` is a config error.
- ``endpoint`` may name ``http://host:port`` (a local stand-in).
"""
import os
import secrets
import struct

from edgeship.plugins.outputs._kinesis import KinesisOutput

_KEY_MODULUS = 7919


def _djb2(text):
    value = 5381
    for byte in text.encode("utf-8", "surrogateescape"):
        value = (value * 33 + byte) & 0xFFFFFFFFFFFFFFFF
    return value


class KinesisStreams(KinesisOutput):
    name = "kinesis_streams"
    description = "Amazon Kinesis Data Streams"
    service = "kinesis"
    target = "Kinesis_20131202.PutRecords"
    stream_key = "stream"
    stream_field = "StreamName"
    failed_key = "FailedRecordCount"
    answers_key = "Records"
    max_record = 1048556
    max_request = 5 * 1024 * 1024
    record_overhead = len('{"Data":"","PartitionKey":""},') + 18   # the longest key
    retry_codes = ("ProvisionedThroughputExceededException", "LimitExceededException",
                   "ThrottlingException", "ResourceNotFoundException",
                   "KMSThrottlingException", "InternalFailure")
    options = KinesisOutput.own_options("kinesis", "stream", "Kinesis stream name")

    def configure(self):
        KinesisOutput.configure(self)
        self.key_prefix = secrets.token_hex(5).encode()

    def record_suffixes(self, tag, count):
        head = b',"PartitionKey":"%s%d' % (self.key_prefix, _djb2(tag) % _KEY_MODULUS)
        # one read of random bytes for the batch (random is the backoff's alone)
        numbers = struct.unpack("<%dH" % count, os.urandom(2 * count))
        return [head + b'%d"' % (number % _KEY_MODULUS) for number in numbers]


PLUGIN = KinesisStreams
