"""nginx_metrics input: a running edgeship reads a real nginx's stub_status page and a stand-in
for the NGINX Plus API (tests/nginx_plus.py); what it emits is what Fluent Bit 5.1.1 emitted
for the same servers (tests/data/nginx_metrics, recorded from the binary), but for the
differences the plugin's docstring lists."""
import http.client
import os
import re
import time
import urllib.request

import pytest

from conftest import accepts_connections, free_port, wait_for
from forward_capture import Capture
from nginx import Nginx
from nginx_plus import DOCUMENTS, PlusApi
from edgeship.codecs import cmetrics
from edgeship.plugins.inputs.nginx_metrics import parse_stub_status

DATA = os.path.join(os.path.dirname(__file__), "data", "nginx_metrics")
LOCATIONS = ('location = /status { stub_status; } '
             'location = /garbage { return 200 "hello there\\n"; }')
STUB_PAGE = (b"Active connections: 1 \nserver accepts handled requests\n 7 7 9 \n"
             b"Reading: 0 Writing: 1 Waiting: 0 \n")


def _read(name, mode="rb"):
    with open(os.path.join(DATA, name), mode) as f:
        return f.read()


def test_stub_status_pages_read_as_fluent_bit_reads_them():
    assert parse_stub_status(STUB_PAGE) == {"active": 1, "accepts": 7, "handled": 7,
                                            "requests": 9, "reading": 0, "writing": 1,
                                            "waiting": 0}
    # Empty lines are skipped, CRLF is fine, the text ends at a NUL, the second line is not
    # read, the blanks of the scanf formats take any whitespace or none.
    same = parse_stub_status(STUB_PAGE)
    assert parse_stub_status(STUB_PAGE.replace(b"\n", b"\r\n")) == same
    assert parse_stub_status(b"\n\n" + STUB_PAGE.replace(b"\n", b"\n\n")) == same
    assert parse_stub_status(STUB_PAGE.replace(b"server accepts", b"whatever")) == same
    assert parse_stub_status(STUB_PAGE + b"\0junk") == same
    assert parse_stub_status(b"Active connections:1\nx\n7\t7  9\nReading:0Writing:1Waiting:0"
                             ) == same
    assert parse_stub_status(STUB_PAGE.replace(b"9", b"99999999999999999999999"))[
        "requests"] == (1 << 64) - 1
    for bad in (b"", b"hello there\n", STUB_PAGE.split(b"Reading")[0],
                STUB_PAGE.replace(b"Active", b"active"), STUB_PAGE.replace(b" 9 ", b" x "),
                STUB_PAGE.replace(b"7 7 9", b"779"), b"\0" + STUB_PAGE,
                STUB_PAGE.replace(b"Writing: 1", b"Writing: -1")):
        assert parse_stub_status(bad) is None, bad


# ---------------------------------------------------------------------------- helpers
def _start(spawn, tmp_path, port, *options):
    """edgeship scraping 127.0.0.1:port every 0.25 s into a forward capture and a
    prometheus_exporter: (capture, exporter port, log path)."""
    capture = Capture()
    exporter = free_port()
    log = tmp_path / "edgeship.log"
    args = ["-i", "nginx_metrics", "-p", "host=127.0.0.1", "-p", "port=%d" % port,
            "-p", "scrape_interval=0.25", "-t", "nginx"]
    for option in options:
        args += ["-p", option]
    args += ["-o", "forward", "-p", "port=%d" % capture.port, "-p", "workers=1", "-m", "*",
             "-o", "prometheus_exporter", "-p", "host=127.0.0.1", "-p", "port=%d" % exporter,
             "-m", "*", "-f", "0.2", "-l", str(log)]
    spawn(args)
    wait_for(lambda: accepts_connections(exporter))
    return capture, exporter, log


def _contexts(capture):
    """Every context received, in scrape order."""
    assert all(frame[0] == "nginx" for frame in capture.frames)
    return [ctx for frame in list(capture.frames) for ctx in cmetrics.decode(frame[1])]


def _scrapes(capture):
    """Every context received as {name: (ts, value)} of its static series."""
    return [{cmetrics.fqname(family["meta"]["opts"]): (series["ts"], series["value"])
             for family in ctx["metrics"] for series in family["values"]
             if "labels" not in series}
            for ctx in _contexts(capture)]


def _page(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as answer:
        return answer.read().decode()


def _log_lines(log, text):
    return [line for line in log.read_text().splitlines() if text in line]


# ---------------------------------------------------------------------------- stub_status
STUB_COUNTERS = ("nginx_connections_accepted", "nginx_connections_handled",
                 "nginx_http_requests_total")


@pytest.mark.e2e
def test_stub_status_metrics_are_fluent_bits(spawn, tmp_path):
    server = Nginx(tmp_path, locations=LOCATIONS).start()
    try:
        capture, exporter, _log = _start(spawn, tmp_path, server.port, "nginx_plus=off")
        quiet = wait_for(lambda: len(_scrapes(capture)) >= 3 and _scrapes(capture))
        # Five requests on one connection between two scrapes.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for _ in range(5):
            conn.request("GET", "/")
            assert conn.getresponse().read() == b"ok\n"
        conn.close()
        done = time.time_ns()
        scrapes = wait_for(lambda: _scrapes(capture)[-1]["nginx_connections_accepted"][0]
                           > done and _scrapes(capture))
        page = _page(exporter)
    finally:
        server.stop()
    # Names, help texts, types and order as Fluent Bit's exporter page for the same nginx.
    fluent_bit = _read("stub.prom", "r").splitlines()
    lines = page.splitlines()
    assert [l for l in lines if l.startswith("#")] == [l for l in fluent_bit if l[0] == "#"]
    assert [l.split()[0] for l in lines] == [l.split()[0] for l in fluent_bit]
    assert "nginx_up 1" in lines
    # Values from the live nginx, as Fluent Bit saw them: each scrape is one request on a
    # connection of its own, and the only one active (writing its answer) while quiet.
    first_up = quiet[0]["nginx_up"]
    assert first_up[0] > 0 and first_up[1] == 1
    for before, after in zip(quiet, quiet[1:]):
        assert [after[n][1] - before[n][1] for n in STUB_COUNTERS] == [1, 1, 1]
    for scrape in quiet:
        assert [scrape["nginx_connections_%s" % n][1]
                for n in ("active", "reading", "writing", "waiting")] == [1, 0, 1, 0]
        assert scrape["nginx_up"] == first_up          # set once, when it came up
        assert len({v[0] for n, v in scrape.items() if n != "nginx_up"}) == 1
    between = len(scrapes) - len(quiet)
    assert [scrapes[-1][n][1] - quiet[-1][n][1] for n in STUB_COUNTERS] == [
        1 + between, 1 + between, 5 + between]


@pytest.mark.e2e
def test_nginx_down_is_nginx_up_0_until_it_answers_and_again_after(spawn, tmp_path):
    server = Nginx(tmp_path, locations=LOCATIONS)     # not started: nothing listens yet
    capture, _exporter, log = _start(spawn, tmp_path, server.port, "nginx_plus=off")
    try:
        wait_for(lambda: len(_scrapes(capture)) >= 3)
        # What Fluent Bit sends while nginx was never reached: every series 0, stamped 0.
        assert capture.frames[0][1].startswith(_read("stub_down.msgpack"))
        assert all(value == (0, 0.0) for value in _scrapes(capture)[-1].values())
        server.start()
        up = wait_for(lambda: [s for s in _scrapes(capture) if s["nginx_up"][1] == 1])
        server.stop()
        stopped = time.time_ns()
        scrapes = wait_for(lambda: [s for s in _scrapes(capture)
                                    if s["nginx_up"][0] > stopped] and _scrapes(capture))
        down = [s for s in scrapes if s["nginx_up"][0] > stopped][0]
        assert down["nginx_up"][1] == 0
        last_good = [s for s in scrapes if s["nginx_up"][1] == 1][-1]
        assert {n: v for n, v in down.items() if n != "nginx_up"} == \
               {n: v for n, v in last_good.items() if n != "nginx_up"}
        assert up[0]["nginx_up"] == last_good["nginx_up"]
        # Failing on: each failure streak is logged once.
        wait_for(lambda: len(_scrapes(capture)) >= scrapes.index(down) + 4)
        assert len(_log_lines(log, "could not read 127.0.0.1:%d/status" % server.port)) == 2
        assert all("[error]" in l for l in _log_lines(log, "could not read"))
        server.start()
        restarted = time.time_ns()
        back = wait_for(lambda: [s for s in _scrapes(capture)
                                 if s["nginx_up"][0] > restarted])
        assert back[0]["nginx_up"][1] == 1
        assert back[0]["nginx_connections_accepted"][0] == back[0]["nginx_up"][0]
        assert len(_log_lines(log, "127.0.0.1:%d answers again" % server.port)) == 2
    finally:
        server.stop()


@pytest.mark.e2e
def test_a_page_that_is_not_stub_status_is_logged_once(spawn, tmp_path):
    server = Nginx(tmp_path, locations=LOCATIONS).start()
    try:
        capture, _exporter, log = _start(spawn, tmp_path, server.port, "nginx_plus=off",
                                         "status_url=/garbage")
        wait_for(lambda: len(_scrapes(capture)) >= 4)
        assert _scrapes(capture)[-1]["nginx_up"] == (0, 0.0)
        assert len(_log_lines(log, "unable to parse stub status response")) == 1
    finally:
        server.stop()


@pytest.mark.e2e
def test_stub_status_over_tls(spawn, tmp_path):
    server = Nginx(tmp_path, locations=LOCATIONS, tls=True).start()
    try:
        capture, _exporter, _log = _start(spawn, tmp_path, server.port, "nginx_plus=off",
                                          "tls=on", "tls.ca_file=%s" % server.certs.ca)
        scrape = wait_for(lambda: [s for s in _scrapes(capture) if s["nginx_up"][1] == 1])[0]
        assert scrape["nginx_http_requests_total"][1] >= 1
    finally:
        server.stop()


# ---------------------------------------------------------------------------- NGINX Plus
# The requests of one scrape, as Fluent Bit made them of the stand-in.
PLUS_PATHS = ["/api/", "/api/9/connections", "/api/9/ssl", "/api/9/http/requests",
              "/api/9/http/server_zones", "/api/9/http/location_zones",
              "/api/9/http/upstreams", "/api/9/stream/server_zones",
              "/api/9/stream/upstreams"]
# The two families Fluent Bit names after others: (its name, edgeship's subsystem).
RENAMED = (("nginxplus_server_zone_discarded{location_zone=", "location_zone"),
           ("nginxplus_server_zone_sent{server_zone=\"mysql-frontend\"", "stream_server_zone"))


def _with_the_differences(text):
    """Fluent Bit's exposition of the stand-in as edgeship makes it (the plugin's docstring)."""
    def replace(old, new, count=1):
        nonlocal text
        assert text.count(old) == count, old
        text = text.replace(old, new)
    for series, subsystem in RENAMED:
        name, _, labels = series.partition("{")
        block = "# HELP %s " % name
        at = text.index(series)
        start = text.rindex(block, 0, at)
        fixed = text[start:at + len(series)].replace(name, "nginxplus_%s_%s" % (
            subsystem, name.rsplit("_", 1)[1]))
        text = text[:start] + fixed + text[at + len(series):]
    # The labels of upstream responses in their places.
    text, count = re.subn(r'responses\{code="([^"]*)",upstream="([^"]*)",server="([^"]*)"\}',
                          r'responses{code="\3",upstream="\1",server="\2"}', text)
    assert count == 10
    # The peers' timing gauges hold the API's values; states as the exporter maps them.
    http_peer = DOCUMENTS["http/upstreams"]["trac-backend"]["peers"][0]
    stream_peer = DOCUMENTS["stream/upstreams"]["mysql_backends"]["peers"][0]
    for family, labels, value in (
            ("upstream_server_header_time", 'upstream="trac-backend",server="10.0.0.1:8088"',
             http_peer["header_time"]),
            ("upstream_server_response_time", 'upstream="trac-backend",server="10.0.0.1:8088"',
             http_peer["response_time"]),
            ("upstream_server_state", 'upstream="trac-backend",server="10.0.0.1:8088"', 1),
            ("upstream_server_state", 'upstream="trac-backend",server="10.0.0.2:8088"', 6),
            ("stream_upstream_server_connect_time",
             'upstream="mysql_backends",server="10.0.0.1:12345"', stream_peer["connect_time"]),
            ("stream_upstream_server_first_byte_time",
             'upstream="mysql_backends",server="10.0.0.1:12345"',
             stream_peer["first_byte_time"]),
            ("stream_upstream_server_response_time",
             'upstream="mysql_backends",server="10.0.0.1:12345"', stream_peer["response_time"]),
            ("stream_upstream_server_state",
             'upstream="mysql_backends",server="10.0.0.1:12345"', 1)):
        series = "nginxplus_%s{%s} " % (family, labels)
        fluent_bit = re.search(re.escape(series) + r"(\S+)\n", text).group(1)
        replace(series + fluent_bit + "\n", "%s%d\n" % (series, value))
    return text


def _without_stamps(context):
    for family in context["metrics"]:
        for series in family["values"]:
            series["ts"] = 1 if series["ts"] else 0
    return context


@pytest.mark.e2e
def test_plus_api_metrics_are_fluent_bits(spawn, tmp_path):
    api = PlusApi()                     # not started: nothing listens yet
    capture, exporter, _log = _start(spawn, tmp_path, api.port, "status_url=/api")
    try:
        wait_for(lambda: capture.frames)
        # Unreachable: nginxplus_up 0 stamped, every other static series 0 stamped 0, the
        # labelled families without series; as Fluent Bit but for the two names.
        fluent_bit = _without_stamps(cmetrics.decode(_read("plus_down.msgpack"))[0])
        for family in fluent_bit["metrics"]:
            opts = family["meta"]["opts"]
            if opts["ss"] == "server_zone" and family["meta"]["labels"] == ["location_zone"]:
                opts["ss"] = "location_zone"
            elif opts["ss"] == "server_zone" and opts["desc"].startswith("NGINX Stream"):
                opts["ss"] = "stream_server_zone"
        assert _without_stamps(_contexts(capture)[0]) == fluent_bit
        api.start()
        page = wait_for(lambda: "nginxplus_up 1" in _page(exporter) and _page(exporter))
    finally:
        api.stop()
    assert api.paths[:len(PLUS_PATHS)] == PLUS_PATHS
    assert page == _with_the_differences(_read("plus.prom", "r"))


@pytest.mark.e2e
def test_plus_api_failures_and_old_versions(spawn, tmp_path):
    api = PlusApi().start()
    try:
        capture, exporter, log = _start(spawn, tmp_path, api.port, "status_url=/api")
        wait_for(lambda: "nginxplus_up 1" in _page(exporter))
        # A page that is not JSON fails the scrape at that page, logged once.
        good = api.pages["/api/9/http/upstreams"]
        api.pages["/api/9/http/upstreams"] = (200, b"this is not json")
        broken = len(_contexts(capture))
        wait_for(lambda: "nginxplus_up 0" in _page(exporter))
        wait_for(lambda: len(_contexts(capture)) >= broken + 4)
        assert len(_log_lines(log, "invalid JSON message from 127.0.0.1:%d/api/9/http/"
                                   "upstreams" % api.port)) == 1
        # A 404 stops the scrape at that page too.
        api.pages["/api/9/http/upstreams"] = good
        wait_for(lambda: "nginxplus_up 1" in _page(exporter))
        del api.pages["/api/9/stream/server_zones"]
        wait_for(lambda: "nginxplus_up 0" in _page(exporter))
        assert _log_lines(log, "http status code error: [127.0.0.1:%d/api/9/stream/"
                               "server_zones] 404" % api.port)
        # API version 4 has no location zones: that page is not asked for.
        api.pages = {path.replace("/9/", "/4/"): page for path, page in api.pages.items()}
        api.pages["/api/"] = (200, b"[1,2,3,4]")
        api.pages["/api/4/stream/server_zones"] = (200, b"{}")
        wait_for(lambda: "nginxplus_up 1" in _page(exporter))
    finally:
        api.stop()
    first = api.paths.index("/api/4/connections") - 1
    assert api.paths[first:first + 8] == [p.replace("/9/", "/4/") for p in PLUS_PATHS
                                          if "location" not in p]
