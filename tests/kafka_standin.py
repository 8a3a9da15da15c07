"""A stand-in Kafka broker for the kafka output's tests (no Kafka broker can be installed on
the test machines): one broker on a free loopback port speaking the Kafka wire protocol as
far as librdkafka's producer needs it: ApiVersions (v0-v3, the flexible v3 body included),
Metadata (v1-v7, every topic asked for exists with one partition led by this broker) and
Produce (v3-v7, RecordBatch v2). Each batch's CRC32C is checked and its records decoded
(gzip too) with kafka-python's record reader; a batch that fails the check is answered
CORRUPT_MESSAGE and kept nowhere.

Faults on request, for the retry tests: ``refuse(n, code)`` answers the next n produce
requests with an error code for every partition; ``drop(n)`` closes the connection on the
next n produce requests without an answer. ``records`` lists what was accepted, as
``Record(topic, partition, key, value, timestamp_ms)``; ``KafkaStandin(keep=False)`` (for the
benchmark) only counts them (``accepted``), from the batch headers, with no CRC check.
"""
import collections
import socket
import socketserver
import struct
import threading

from kafka.record import MemoryRecords

PRODUCE, FETCH, METADATA, API_VERSIONS = 0, 1, 3, 18
# (api, lowest, highest) this broker answers; Fetch only so librdkafka enables RecordBatch v2
# (its MsgVer2 feature needs Produce 3 and Fetch 4), it is never asked.
APIS = ((PRODUCE, 3, 7), (FETCH, 4, 4), (METADATA, 1, 7), (API_VERSIONS, 0, 3))
NODE_ID = 1
CORRUPT_MESSAGE = 2
UNSUPPORTED_VERSION = 35

Record = collections.namedtuple("Record", "topic partition key value timestamp_ms")


class _Reader:
    def __init__(self, data):
        self.data = data
        self.at = 0

    def take(self, fmt):
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string(self):
        size = self.take(">h")
        if size < 0:
            return None
        text = self.data[self.at:self.at + size].decode()
        self.at += size
        return text

    def bytes(self):
        size = self.take(">i")
        if size < 0:
            return None
        value = self.data[self.at:self.at + size]
        self.at += size
        return value

    def array(self, item):
        count = self.take(">i")
        return None if count < 0 else [item() for _ in range(count)]


def _string(text):
    if text is None:
        return struct.pack(">h", -1)
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def _array(items):
    return struct.pack(">i", len(items)) + b"".join(items)


def _uvarint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class KafkaStandin:
    def __init__(self, keep=True):
        self.keep = keep
        self.accepted = 0
        self.records = []
        self.produce_requests = 0
        self.lock = threading.Lock()
        self._refusals = collections.deque()
        self._drops = 0
        self._offsets = collections.Counter()
        self.corrupt_batches = 0
        standin = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                standin._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.address = "127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def refuse(self, count, code):
        with self.lock:
            self._refusals.extend([code] * count)

    def drop(self, count):
        with self.lock:
            self._drops += count

    def values(self, topic=None):
        with self.lock:
            return [r.value for r in self.records if topic is None or r.topic == topic]

    # --- the connection ------------------------------------------------------------------

    def _serve(self, sock):
        try:
            while True:
                head = _read_exactly(sock, 4)
                if head is None:
                    return
                request = _read_exactly(sock, struct.unpack(">i", head)[0])
                if request is None:
                    return
                answer = self._answer(request)
                if answer is False:     # a fault: the connection goes, no answer
                    return
                if answer is not None:
                    sock.sendall(struct.pack(">i", len(answer)) + answer)
        except OSError:
            return
        finally:
            sock.close()

    def _answer(self, request):
        reader = _Reader(request)
        api, version, correlation = reader.take(">hhi")
        reader.string()     # client id
        if api == API_VERSIONS:
            return struct.pack(">i", correlation) + self._api_versions(version)
        if api == METADATA:
            return struct.pack(">i", correlation) + self._metadata(reader, version)
        if api == PRODUCE:
            body = self._produce(reader, version)
            if body is None or body is False:
                return body
            return struct.pack(">i", correlation) + body
        raise AssertionError("the stand-in got request %d v%d" % (api, version))

    @staticmethod
    def _api_versions(version):
        if version >= 3:    # flexible: compact array (length + 1), tagged fields
            items = b"".join(struct.pack(">hhh", *api) + b"\x00" for api in APIS)
            return struct.pack(">h", 0) + _uvarint(len(APIS) + 1) + items \
                + struct.pack(">i", 0) + b"\x00"
        body = struct.pack(">h", 0) + _array([struct.pack(">hhh", *api) for api in APIS])
        return body + (struct.pack(">i", 0) if version >= 1 else b"")

    def _metadata(self, reader, version):
        topics = reader.array(reader.string)
        with self.lock:
            if topics is None:
                topics = sorted({r.topic for r in self.records})
        out = struct.pack(">i", 0) if version >= 3 else b""
        broker = struct.pack(">i", NODE_ID) + _string("127.0.0.1") + struct.pack(">i", self.port)
        out += _array([broker + _string(None)])
        if version >= 2:
            out += _string("standin")
        out += struct.pack(">i", NODE_ID)
        entries = []
        for name in topics:
            partition = struct.pack(">hii", 0, 0, NODE_ID)
            if version >= 7:
                partition += struct.pack(">i", 0)
            partition += _array([struct.pack(">i", NODE_ID)]) * 2
            if version >= 5:
                partition += _array([])
            entries.append(struct.pack(">h", 0) + _string(name) + b"\x00" + _array([partition]))
        return out + _array(entries)

    def _produce(self, reader, version):
        reader.string()     # transactional id
        acks, _timeout = reader.take(">hi")

        def partition():
            return reader.take(">i"), reader.bytes()

        def topic():
            return reader.string(), reader.array(partition)

        topics = reader.array(topic)
        with self.lock:
            self.produce_requests += 1
            if self._drops:
                self._drops -= 1
                return False
            refusal = self._refusals.popleft() if self._refusals else 0
        answers = []
        for name, partitions in topics:
            parts = []
            for index, data in partitions:
                code, base = refusal, -1
                if not code:
                    code, base = self._accept(name, index, data)
                parts.append(struct.pack(">ihqq", index, code, base, -1)
                             + (struct.pack(">q", 0) if version >= 5 else b""))
            answers.append(_string(name) + _array(parts))
        if acks == 0:
            return None
        return _array(answers) + struct.pack(">i", 0)

    def _accept(self, topic, partition, data):
        batches = MemoryRecords(data)
        decoded = []
        while batches.has_next():
            batch = batches.next_batch()
            if not self.keep:
                with self.lock:
                    self.accepted += batch.records_count
                continue
            if not batch.validate_crc():
                with self.lock:
                    self.corrupt_batches += 1
                return CORRUPT_MESSAGE, -1
            decoded.extend(Record(topic, partition, r.key, r.value, r.timestamp) for r in batch)
        with self.lock:
            base = self._offsets[(topic, partition)]
            self._offsets[(topic, partition)] += len(decoded)
            self.records.extend(decoded)
            self.accepted += len(decoded)
        return 0, base


def _read_exactly(sock, size):
    data = b""
    while len(data) < size:
        try:
            piece = sock.recv(size - len(data))
        except (ConnectionError, socket.timeout):
            return None
        if not piece:
            return None
        data += piece
    return data
