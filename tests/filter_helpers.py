"""Build real filter instances from classic config text (the real loader, schema and
engine), and run batches through them."""
import io
import os

from edgeship.engine.loader import Loader

from conftest import run_edgeship

T0 = 1711360800 * 1000000000


def load(tmp_path, filters, outputs="[OUTPUT]\n    Name null\n    Match *\n", parsers=None,
         files=None):
    """An Engine for ``filters`` (classic config text of [FILTER] sections)."""
    if parsers:
        (tmp_path / "parsers.conf").write_text(parsers)
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    service = "[SERVICE]\n    Log_Level error\n"
    if parsers:
        service += "    Parsers_File parsers.conf\n"
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(service + filters + outputs)
    loader = Loader(environ=dict(os.environ), log_stream=io.StringIO())
    return loader.build(loader.read(str(conf)))


def emit(engine, tag, events):
    """Records into the pipeline as an input hands them over, through an input's context."""
    source = engine.context("test.0")
    source.budget = engine.storage.add_input("test.0")
    source.emit(tag, events)


def plugin(tmp_path, filters, **kw):
    """The first filter of the config."""
    return load(tmp_path, filters, **kw).filters[0].plugin


def section(name, *lines, match="*"):
    body = "".join("    %s\n" % line for line in lines)
    return "[FILTER]\n    Name %s\n    Match %s\n%s" % (name, match, body)


def run(flt, records, tag="t"):
    """Records through ``flt``; returns the records that come out."""
    events = [(T0 + i, dict(r)) for i, r in enumerate(records)]
    return [r for _, r in flt.filter(tag, events)]


CAPTURE_SCRIPT = """SEEN = []


def capture(tag, events):
    SEEN.extend((tag, event) for event in events)
    return events
"""


def capture(tmp_path, match):
    """A python filter section that records every (tag, event) it sees for ``match``;
    placed last, it shows what the router gets for those tags."""
    (tmp_path / "capture.py").write_text(CAPTURE_SCRIPT)
    return section("python", "Script capture.py", "Call capture", match=match)


def captured(engine):
    """{Match of each capture filter: [(tag, event), ...]}."""
    return {state.plugin.conf["match"]: state.plugin.function.__globals__["SEEN"]
            for state in engine.filters if state.plugin.name == "python"}


def run_config(tmp_path, text, input=None):
    """Run ``edgeship -c`` on config ``text`` as a real child process to its end."""
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(text)
    return run_edgeship(["-c", str(conf)], input=input)
