"""prometheus_scrape: an exposition becomes the context Fluent Bit 5.1.1 makes of it (bytes
of a capture); a running edgeship scrapes a real HTTP server and survives bad pages."""
import http.server
import os
import threading

import pytest

from conftest import free_port, wait_for
from forward_capture import Capture
from edgeship.codecs import cmetrics
from edgeship.codecs.prometheus_text import decode

DATA = os.path.join(os.path.dirname(__file__), "data", "cmetrics")


def _read(name, mode="rb"):
    with open(os.path.join(DATA, name), mode) as f:
        return f.read()


def test_an_exposition_becomes_fluent_bits_context():
    captured = _read("scrape_context.msgpack")
    scrape_ts = cmetrics.decode(captured)[0]["metrics"][0]["values"][0]["ts"]
    assert decode(_read("scrape_source.prom", "r"), scrape_ts).encode() == captured


class Exporter:
    """An HTTP server serving ``pages`` in turn on /metrics (the last one from then on)."""

    def __init__(self, pages):
        self.pages = list(pages)
        self.hits = 0
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                page = exporter.pages[min(exporter.hits, len(exporter.pages) - 1)]
                exporter.hits += 1
                status, body = page
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.mark.e2e
def test_a_running_scrape_survives_bad_pages(spawn, tmp_path):
    good = (200, _read("scrape_source.prom"))
    exporter = Exporter([(500, b"oops"), (200, b"this is { not prometheus"), good])
    capture = Capture()
    log = tmp_path / "edgeship.log"
    try:
        spawn(["-i", "prometheus_scrape", "-p", "host=127.0.0.1",
               "-p", "port=%d" % exporter.port, "-p", "scrape_interval=0.3", "-t", "scraped",
               "-o", "forward", "-p", "port=%d" % capture.port, "-p", "match=*",
               "-f", "0.2", "-l", str(log)])
        wait_for(lambda: capture.frames, timeout=30)
    finally:
        exporter.close()
    tag, payload, options = capture.frames[0]
    (context,) = cmetrics.decode(payload)
    names = [cmetrics.fqname(f["meta"]["opts"]) for f in context["metrics"]]
    assert tag == "scraped" and names == ["demo_requests_total", "demo_temperature",
                                          "demo_untyped", "demo_rpc_seconds",
                                          "demo_latency_seconds"]
    text = log.read_text()
    assert "HTTP status=500" in text and "does not parse" in text
