"""JSON lines written as they came: a line the json parser decodes is, when it already is
Fluent Bit's JSON rendering of its record, handed on with that text
(``formats.RenderedEvents``), and the file output's ``plain`` format writes the text instead
of rendering the record again. The bytes must be those of the eager path (every record
rendered): generated lines in many spellings, through the parser, through a real engine
(storage, chunks, the file output), and through the CLI on a corpus file."""
import asyncio
import io
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeship.codecs import formats, untrusted
from edgeship.engine.loader import Loader
from test_parsers import make

NOW = 1711360801 * 10 ** 9
KEEP_ALL = "[FILTER]\n    Name grep\n    Match *\n    Exclude never_there ^x$\n"

# Lines Fluent Bit renders otherwise than they are written, and lines it renders as written.
CORPUS = [
    '{"a":1,"b":"x"}', '{"a":-0}', '{"a":-0,"b":1}', '{"a":-01}', '{"a":1.0}', '{"a":1e5}',
    '{"a":1E5}', '{"a":18446744073709551615}', '{"a":18446744073709551616}',
    '{"a":-9223372036854775808}', '{"a":9223372036854775808}', '{"a":1,"a":2}',
    '{"a":"\\u00e9"}', '{"a":"\\/"}', '{"a":"\\""}', '{"a":"é"}', '{"a":"\x7f"}',
    '{"a": 1}', '{"a":"b c"}', ' {"a":1}', '{"a":[1,2]}', '{"a":{"b":1}}', '{"a":{}}',
    '{}', '{"a":true,"b":false,"c":null}', '{"a":"x:y,z}"}', '{"":""}', '[1]', '"s"',
    '{"a":1}{"b":2}', '{"a":"\\ud800"}', '{"a":1,}', '{"-0":"-0"}', '{"a":"-0,"}',
    '{"a":NaN}', '{"a":1e400}', '{"a\\u0000":"\\u0001"}', '{"a":"\\t"}', '{"t":"10:00:00Z"}',
]

_KEY = st.text(st.sampled_from('ab-0. é"\\\x7f:,{}'), max_size=4)
_SCALAR = (st.none() | st.booleans() | st.integers(-2 ** 64, 2 ** 64)
           | st.floats(allow_nan=False, allow_infinity=False) | _KEY)
_RECORD = st.dictionaries(_KEY, _SCALAR | st.lists(_SCALAR, max_size=2)
                          | st.dictionaries(_KEY, _SCALAR, max_size=2), max_size=5)


@st.composite
def line(draw):
    """A JSON line in one of several spellings, or a corpus line."""
    if draw(st.booleans()):
        return draw(st.sampled_from(CORPUS))
    record = draw(_RECORD)
    spaced = draw(st.booleans())
    return json.dumps(record, separators=(", ", ": ") if spaced else (",", ":"),
                      ensure_ascii=draw(st.booleans()))


@pytest.fixture(scope="module")
def parser():
    return make("json")


@settings(max_examples=400, deadline=None)
@given(st.lists(line(), min_size=1, max_size=8))
def test_the_text_handed_on_is_the_rendering_of_the_records(parser, texts):
    eager = parser.parse_lines(texts, NOW)
    lazy = parser.parse_lines(texts, NOW, as_rendered=True)
    assert list(lazy) == eager
    if isinstance(lazy, formats.RenderedEvents):
        assert lazy.json_lines == formats.render_json(eager, "json_lines")
    plain = untrusted.loads_plain_objects(texts)
    if plain is not None:
        assert plain[0] == untrusted.loads_objects(texts)


def test_plain_lines_are_handed_on_with_their_text(parser):
    texts = ['{"ts":"2024-03-25T10:00:00Z","user":42445,"movie":"alien+1979","rating":4}',
             '{"a":-1,"b":true,"c":null,"d":"x-0"}', '{}']
    events = parser.parse_lines(texts, NOW, as_rendered=True)
    assert isinstance(events, formats.RenderedEvents)
    assert events.json_lines == ("\n".join(texts) + "\n").encode()
    # Not as they are: the records are rendered.
    for odd in ('{"a":-0}', '{"a":1.5}', '{"a":"b c"}', '{"a":1,"a":2}', '{"a":"\\/"}',
                '{"a":"é"}', '{"a":[1]}'):
        assert not isinstance(parser.parse_lines(texts + [odd], NOW, as_rendered=True),
                              formats.RenderedEvents), odd
    # A caller that changes the records does not ask for it.
    assert type(parser.parse_lines(texts, NOW)) is list


# ------------------------------------------------------------------ through a real engine
def engine(tmp_path, name, with_filter):
    conf = tmp_path / ("%s.conf" % name)
    (tmp_path / "parsers.conf").write_text("[PARSER]\n    Name j\n    Format json\n")
    conf.write_text("[SERVICE]\n    Parsers_File parsers.conf\n"
                    "[INPUT]\n    Name tail\n    Path %s\n    Parser j\n%s"
                    "[OUTPUT]\n    Name file\n    Match *\n    Path %s\n    Format plain\n"
                    % (tmp_path / "none.log", KEEP_ALL if with_filter else "", tmp_path))
    loader = Loader(log_stream=io.StringIO())
    return loader.build(loader.read(str(conf)))


def written(engine, batches):
    """What the file output renders for every chunk the batches make, whether each chunk
    came with its text, and whether storage kept record objects for any."""
    tail = engine.inputs[0]
    for texts in batches:
        events = tail.parser.parse_lines(texts, NOW, as_rendered=True)
        if [e for e in events if e is None]:
            events = [e for e in events if e is not None]
        if events:
            tail.context.emit("t", events)
    engine.storage.tick()

    async def load():
        out, texts = [], []
        output = engine.outputs[0]
        objects = any(queued.events is not None for queued in output.queue.pending())
        for queued in output.queue.pending():
            chunk = await engine.storage.load(queued)
            texts.append(chunk.json_lines is not None)
            out.append(output.plugin.render(chunk)[0])
            engine.storage.confirm(queued)
        return b"".join(out), texts, objects
    return asyncio.run(load())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(line(), min_size=1, max_size=6), min_size=1, max_size=4))
def test_the_file_output_writes_the_bytes_of_the_eager_path(tmp_path_factory, batches):
    folder = tmp_path_factory.mktemp("engines")
    lazy, _, _ = written(engine(folder, "lazy", False), batches)
    eager, eager_texts, _ = written(engine(folder, "eager", True), batches)
    assert lazy == eager
    assert not any(eager_texts)     # a filter ran: the records were rendered


def test_a_chunk_of_plain_lines_is_written_from_its_text(tmp_path):
    texts = ['{"a":%d,"b":"x"}' % i for i in range(50)]
    out, with_text, objects = written(engine(tmp_path, "lazy", False), [texts[:20], texts[20:]])
    assert with_text == [True] and not objects     # the text alone was kept
    assert out == ("\n".join(texts) + "\n").encode()
    # One batch without its text: the whole chunk is rendered, to the same bytes.
    out, with_text, _ = written(engine(tmp_path, "mixed", False), [texts[:20], ['{"a": 1}']])
    assert with_text == [False]
    out_first, with_text, objects = written(engine(tmp_path, "other", False),
                                            [['{"a": 1}'], texts[:20]])
    assert with_text == [False] and objects        # the records are kept, not the text
    assert out_first == ('{"a":1}\n' + "\n".join(texts[:20]) + "\n").encode()
    assert out == ("\n".join(texts[:20]) + '\n{"a":1}\n').encode()


# ------------------------------------------------------------------ the CLI, a corpus file
def test_tail_to_file_plain_gives_the_bytes_of_the_eager_path(tmp_path):
    log = tmp_path / "in.log"
    log.write_text("\n".join(CORPUS * 3 + ['{"a":%d}' % i for i in range(100)]) + "\n")
    (tmp_path / "parsers.conf").write_text("[PARSER]\n    Name j\n    Format json\n")
    outputs = []
    for name, extra in (("lazy", []), ("eager", ["-F", "grep", "-m", "*", "-p",
                                                  "exclude=never_there ^x$"])):
        subprocess.run([sys.executable, "-m", "edgeship", "-q", "-R",
                        str(tmp_path / "parsers.conf"), "-i", "tail", "-p", "path=%s" % log,
                        "-p", "read_from_head=on", "-p", "exit_on_eof=on", "-p", "parser=j",
                        "-t", "t"] + extra + ["-o", "file", "-m", "*", "-p",
                                              "path=%s" % tmp_path, "-p", "file=%s" % name,
                                              "-p", "format=plain"],
                       check=True, timeout=60, capture_output=True)
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\n") == len(CORPUS) * 3 + 100
    assert os.path.getsize(tmp_path / "lazy") > 0


def test_the_text_is_made_only_for_an_output_that_takes_it(tmp_path):
    """tail asks its context: the text is worth making for file plain without filters, not
    behind a filter, not for an output that renders records otherwise."""
    plain = engine(tmp_path, "plain", False)
    assert plain.inputs[0].context.takes_json_lines("t")
    assert not engine(tmp_path, "filtered", True).inputs[0].context.takes_json_lines("t")
    conf = tmp_path / "out_file.conf"
    conf.write_text("[SERVICE]\n    Parsers_File parsers.conf\n[INPUT]\n    Name tail\n"
                    "    Path %s\n    Parser j\n[OUTPUT]\n    Name file\n    Match *\n"
                    "    Path %s\n[OUTPUT]\n    Name null\n    Match *\n"
                    % (tmp_path / "none.log", tmp_path))
    loader = Loader(log_stream=io.StringIO())
    other = loader.build(loader.read(str(conf)))
    assert not other.inputs[0].context.takes_json_lines("t")
