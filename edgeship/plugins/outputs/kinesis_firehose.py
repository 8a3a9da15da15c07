"""kinesis_firehose output: records into an Amazon Data Firehose delivery stream
(out_kinesis_firehose).

Kept from Fluent Bit 5.1.1:
- ``region`` and ``delivery_stream`` are required; ``time_key`` and ``log_key`` cannot be used
  together. Records rendered as ``edgeship.plugins.outputs._kinesis`` says (JSON, or
  ``log_key``'s value; ``time_key`` / ``time_key_format``; a newline after each;
  ``simple_aggregation``; ``compression`` gzip, zstd or snappy of each record).
- ``PutRecordBatch`` (JSON 1.1, ``X-Amz-Target: Firehose_20150804.PutRecordBatch``, SigV4 for
  ``firehose``), base64 ``Data``, batches of at most 500 records and 4,194,304 bytes; a record
  of 1,024,000 bytes or more is dropped with a warning; an aggregated record ends with one
  more newline.
- ``endpoint`` (default ``firehose.<region>.amazonaws.com``, port 443, TLS on),
  ``sts_endpoint``, ``role_arn``, ``external_id``, ``profile`` (credentials:
  ``edgeship.net.aws``), ``auto_retry_requests``, net.* and tls.* options, Workers 1.

Differences (safer on purpose):
- When ``FailedPutCount`` is above 0, only the records AWS did not take are sent again on
  the retry, and batches of the chunk already accepted are not sent again (Fluent Bit resends
  the whole chunk, duplicating what was delivered).
- Errors: throttling, 5xx, no answer, no credentials, an answer that cannot be read, or a
  missing delivery stream (``ResourceNotFoundException``) RETRY; 401/403 fetch credentials
  again and RETRY; other 4xx are ERROR with the service's message.
- ``log_key`` naming a map or number sends its JSON (Fluent Bit strips its first and last
  characters). The records dropped as too large are counted in one warning per chunk.
- Aggregated records go in batches like the others (Fluent Bit sends one request each); a
  compressed record still too large is dropped (Fluent Bit cuts its input until it fits).
  ``compression arrow`` (a build option of Fluent Bit) is a config error.
- ``endpoint`` may name ``http://host:port`` (a local stand-in).
"""
from edgeship.plugins.outputs._kinesis import KinesisOutput


class KinesisFirehose(KinesisOutput):
    name = "kinesis_firehose"
    description = "Amazon Data Firehose (Kinesis Firehose)"
    service = "firehose"
    target = "Firehose_20150804.PutRecordBatch"
    stream_key = "delivery_stream"
    stream_field = "DeliveryStreamName"
    failed_key = "FailedPutCount"
    answers_key = "RequestResponses"
    max_record = 1024000
    max_request = 4194304
    record_overhead = len('{"Data":""},')
    final_newline = True
    retry_codes = ("ServiceUnavailableException", "ThrottlingException",
                   "LimitExceededException", "ResourceNotFoundException",
                   "KMSThrottlingException")
    options = KinesisOutput.own_options("firehose", "delivery_stream",
                                        "Firehose delivery stream name")

    @staticmethod
    def record_suffixes(tag, count):
        return [b""] * count


PLUGIN = KinesisFirehose
