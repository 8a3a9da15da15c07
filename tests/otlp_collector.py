"""A stand-in for an OpenTelemetry Collector's OTLP/HTTP receiver (the Collector is not packaged
by Debian): a loopback HTTP/1.1 server (tests/http_receiver.py: real sockets) that handles a
request as the Collector's otlpreceiver documents it (https://opentelemetry.io/docs/specs/otlp/
"OTLP/HTTP"): ``POST /v1/logs`` and ``/v1/metrics`` (404 otherwise), ``Content-Type:
application/x-protobuf`` (415 otherwise), ``Content-Encoding`` gzip or zstd undone (400 for
another), the body decoded with opentelemetry-proto's generated classes (400 when it does not
decode), and 200 with the serialized, empty Export*ServiceResponse. ``status(index)`` lets a
test answer a request otherwise (503, 400...), as a Collector under pressure or a refusing
one does; such a request is still recorded, not kept as delivered.
"""
import gzip

import cramjam
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest, ExportLogsServiceResponse)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest, ExportMetricsServiceResponse)

from http_receiver import Receiver, response

SIGNALS = {"/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
           "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse)}


class Collector:
    def __init__(self, status=None, port=0):
        self.status = status or (lambda index: 200)
        self.logs = []          # ExportLogsServiceRequest accepted, in arrival order
        self.metrics = []       # ExportMetricsServiceRequest accepted
        self.receiver = Receiver(self._answer, port)
        self.port = self.receiver.port

    @property
    def requests(self):
        return self.receiver.requests

    def _answer(self, request, index):
        kinds = SIGNALS.get(request.path)
        if request.method != "POST" or kinds is None:
            return response(404, b"404 page not found", content_type="text/plain")
        if request.header("Content-Type") != "application/x-protobuf":
            return response(415, b"unsupported media type", content_type="text/plain")
        body = request.body
        encoding = request.header("Content-Encoding")
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "zstd":
                body = bytes(cramjam.zstd.decompress(body))
            elif encoding:
                return response(400, b"unsupported Content-Encoding", content_type="text/plain")
            message = kinds[0]()
            message.ParseFromString(body)
        except Exception as exc:
            return response(400, ("bad request: %s" % exc).encode(), content_type="text/plain")
        status = self.status(index)
        if status != 200:
            return response(status, b"refused by the test", content_type="text/plain")
        (self.logs if request.path == "/v1/logs" else self.metrics).append(message)
        return response(200, kinds[1]().SerializeToString(),
                        content_type="application/x-protobuf")

    def log_records(self):
        return [record for request in self.logs for resource in request.resource_logs
                for scope in resource.scope_logs for record in scope.log_records]

    def metric(self, name):
        """The last Metric called ``name`` received, or None."""
        found = None
        for request in self.metrics:
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        if metric.name == name:
                            found = metric
        return found

    def close(self):
        self.receiver.close()


def attributes(pairs):
    """{key: python value} of repeated KeyValue (strings, ints, doubles, bools)."""
    out = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        out[pair.key] = getattr(pair.value, kind) if kind else None
    return out
