"""prometheus_remote_write input: metrics pushed by Prometheus remote write senders
(Prometheus, Grafana Alloy, vmagent, Fluent Bit or edgeship's output), on the http input's
server (``_http_listener``) (in_prometheus_remote_write).

Kept from Fluent Bit 5.1.1 (answers and metrics checked on the real binary):
- Listens on 0.0.0.0:8080. ``POST`` of a remote write 1.0 ``WriteRequest`` (protobuf): raw
  snappy (``Content-Encoding: snappy``, as senders send it), gzip, zstd, or as it is
  without a Content-Encoding. Any path, or only ``URI`` when it is set (the query is not part
  of the path). The answer is ``successful_response_code`` (201; 200 or 204, another is
  logged and 201 used) without body.
- Each request is one metrics context under the input's Tag, as cmetrics' remote write
  decoder makes it (``codecs.remote_write.to_contexts``): each series a family of its own
  named by ``__name__``, a gauge unless the request's metadata says counter, untyped or
  histogram (native histograms with float counts: the bucket indexes are the bounds), HELP
  ``-`` without metadata; all its labels, ``__name__`` included, are the family's label
  keys; each sample is a series at its own time. Series without ``__name__`` are left out.
- Answers 400 with Fluent Bit's texts: ``error: invalid request`` (a path not starting with
  ``/``, a body that is not a WriteRequest or does not decompress), ``error: invalid
  endpoint`` (not ``URI``), ``error: invalid HTTP method`` (not POST), ``error: invalid
  payload`` (no body). ``tag_from_uri`` is accepted and, as in 5.1.1, does nothing.
  http_server.* options, TLS.

Differences (README "Where edgeship differs"): the answer comes once the metrics are
confirmed (at-least-once, as the http input). A series cmetrics refuses (a label without a
name, an empty name or HELP, a summary, info, stateset or gaugehistogram type, a native
histogram without spans, float counts or count) is left out and logged wherever it is, and
400 is answered only when no series is left: Fluent Bit refuses the whole request when that
series is the last one or its name or HELP is empty (the valid series lost with it), and
drops it silently otherwise. Invalid UTF-8 in names and values becomes U+FFFD (Fluent Bit
passes the bytes on, which its own msgpack readers refuse). A framed snappy body is taken
(Fluent Bit: 400 ``invalid payload``); a decompressed body over ``http_server.buffer_max_size``
is answered 413. More than 65535 series make several contexts (cmetrics reads no more
families in one); a series of more than 65535 samples or labels is left out. A request whose
series all lack samples makes no context (Fluent Bit sends one of empty families). An
HTTP/1.1 request without Host is refused by the server (400) with its own text.

Needs the ``remote_write`` extra (protobuf and cramjam); without it the config is refused at
start, naming the extra.
"""
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.net.http_server import Response
from edgeship.plugins.inputs._http_listener import (SUCCESS_CODE_OPTION, BadBody, BodyTooLarge,
                                                    HttpListener, error,
                                                    http_server_options)

DEFAULT_PORT = 8080


class PrometheusRemoteWriteInput(HttpListener):
    name = "prometheus_remote_write"
    description = "Prometheus Remote Write input"
    encodings = ("gzip", "zstd", "snappy")
    options = http_server_options(DEFAULT_PORT) + (
        Option("URI", help="the only request path taken (none: any path)"),
        Option("tag_from_uri", "bool", "true", compat=True,
               help="no effect in Fluent Bit 5.1.1 either: the tag is the input's"),
        SUCCESS_CODE_OPTION,
    )

    def configure(self):
        try:    # imported here: a missing extra is a config error, not a traceback
            import cramjam  # noqa: F401  (decoded_body's snappy and zstd)
            import google.protobuf  # noqa: F401  (remote_write imports it when decoding)
            from edgeship.codecs import remote_write
        except ImportError as exc:
            raise ConfigError("prometheus_remote_write needs the remote_write extra "
                              "(pip install 'edgeship[remote_write]'): %s" % exc)
        self.decoder = remote_write
        self.configure_server()
        self.uri = self.conf["uri"]
        self.success = Response(self.configured_success_code())

    async def handle(self, request):
        if not request.path.startswith("/"):
            return self.refuse(request, "error: invalid request\n")
        if self.uri and request.path != self.uri:
            return self.refuse(request, "error: invalid endpoint\n")
        if request.method != "POST":
            return self.refuse(request, "error: invalid HTTP method\n")
        try:
            body = self.decoded_body(request)
        except BodyTooLarge:
            return error("error: payload too large\n", 413)
        except BadBody as exc:
            return self.refuse(request, "error: invalid request\n",
                               "cannot decompress the body: %s" % exc)
        if not body:
            return self.refuse(request, "error: invalid payload\n")
        try:
            contexts, skipped = self.decoder.to_contexts(body)
        except self.decoder.RemoteWriteError as exc:
            return self.refuse(request, "error: invalid request\n", str(exc))
        payload = b"".join(filter(None, [context.encode() for context in contexts]))
        if skipped:
            name, reason = skipped[0]
            text = "%d series left out, the first (%r): %s" % (len(skipped), name, reason)
            if not any(context.families for context in contexts):
                return self.refuse(request, "error: invalid request\n", text)
            self.log.warn_often("%s", text)
        if payload:
            await self.deliver_metrics(self.tag, payload)
        return self.success


PLUGIN = PrometheusRemoteWriteInput
