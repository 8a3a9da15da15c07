"""Lazy records: forward entries the engine stores as the bytes they came in, decoding them
only for a filter or an output that renders records, give the very bytes of the eager path
(every record decoded and packed again) on generated frames and on Fluent Bit's own.

Two real engines take the same frames through the forward input's session and context:
one routes the tag through no filter (entries in edgeship's form stay packed), the other
through a filter that keeps every record as it is (everything decoded). What their queues
hold for the outputs, and what the file output renders from it, must be the same bytes."""
import asyncio
import gzip
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeship.codecs import entries, formats
from edgeship.codecs.msgpack import packb
from edgeship.core import forward
from edgeship.engine.loader import Loader
from test_forward_vectors import _frames

T0 = 1711360801 * 10 ** 9
KEEP_ALL = "[FILTER]\n    Name grep\n    Match *\n    Exclude never_there ^x$\n"


def engine(tmp_path, name, with_filter):
    conf = tmp_path / ("%s.conf" % name)
    conf.write_text("[INPUT]\n    Name forward\n    Port 0\n%s"
                    "[OUTPUT]\n    Name null\n    Match *\n" % (KEEP_ALL if with_filter else ""))
    loader = Loader(log_stream=io.StringIO())
    return loader.build(loader.read(str(conf)))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(lazy, eager): the same config, without and with a filter that keeps every record."""
    folder = tmp_path_factory.mktemp("engines")
    return engine(folder, "lazy", False), engine(folder, "eager", True)


def take(engine, frames):
    """Frames through the forward input's session and context, as a connection brings
    them; returns whether each request came with its entries packed."""
    plugin = engine.inputs[0]
    session = forward.ServerSession(plugin.codec)
    packed = []
    for frame in frames:
        result = session.receive(frame)
        assert result.close is None, result.close
        for kind, request in result.events:
            assert kind == forward.REQUEST
            packed.append(isinstance(request.events, entries.Entries))
            plugin.context.emit(request.tag, request.events, request.size)
    engine.storage.tick()
    return packed


def stored(engine):
    """(tag, count, bytes, out_file rendering) of every queued chunk, oldest first, and
    whether any chunk held decoded records before that rendering; the queue is emptied."""
    async def load():
        found, decoded = [], False
        for queued in engine.outputs[0].queue.pending():
            decoded = decoded or queued.events is not None
            chunk = await engine.storage.load(queued)
            found.append((chunk.tag, chunk.count, chunk.payload,
                          formats.render_out_file(chunk.tag, chunk.events())))
            engine.storage.confirm(queued)
        return found, decoded
    return asyncio.run(load())


def compare(lazy, eager, frames):
    """The same frames into both engines: the same bytes come out. Returns whether the
    session kept each request's entries packed."""
    packed = take(lazy, frames)
    take(eager, frames)
    (lazy_chunks, lazy_decoded), (eager_chunks, _) = stored(lazy), stored(eager)
    assert lazy_chunks == eager_chunks
    if all(packed):
        assert not lazy_decoded                # stored without building a record
    return packed


# ---------------------------------------------------------------------------- frame makers
def fluent_bit_entries(events):
    """Entries as Fluent Bit's log encoder writes them: map32 metadata and record headers."""
    out = []
    for t, record in events:
        body = b"".join(packb(k) + packb(v) for k, v in record.items())
        out.append(b"\x92\x92" + forward.pack_event_time(t) + b"\xdf\x00\x00\x00\x00"
                   + b"\xdf" + len(record).to_bytes(4, "big") + body)
    return b"".join(out)


def frames_of(kind, tag, events):
    payload, _ = entries.pack_entries(events)
    encoder = forward.Encoder(packb, pack_entries=lambda e: entries.pack_entries(e)[0])
    if kind == "forward":                       # what edgeship's forward output sends
        return [encoder.packed_frame(tag, payload, len(events))[0]]
    if kind == "forward+ack":
        ack = forward.Encoder(packb, require_ack=True)
        return [ack.packed_frame(tag, payload, len(events))[0]]
    if kind == "packed":                        # PackedForward
        return [b"\x92" + forward.pack_str(tag) + forward.pack_bin(payload)]
    if kind == "gzip":
        return [forward.Encoder(packb, compress=True).packed_frame(tag, payload, len(events))[0]]
    if kind == "fluent-bit":
        body = fluent_bit_entries(events)
        return [b"\x92" + forward.pack_str(tag) + forward.array_header(len(events)) + body,
                b"\x92" + forward.pack_str(tag) + forward.pack_bin(gzip.compress(body))]
    if kind == "no-metadata":
        return [forward.Encoder(packb, retain_metadata=False).frame(tag, events)[0]]
    if kind == "time-as-integer":
        return [forward.Encoder(packb, time_as_integer=True).frame(tag, events)[0]]
    raise ValueError(kind)


EDGESHIP_FORMS = ("forward", "forward+ack", "packed", "gzip")
OTHER_FORMS = ("fluent-bit", "no-metadata", "time-as-integer")

_SCALAR = (st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1)
           | st.floats(allow_nan=False) | st.text(max_size=20) | st.binary(max_size=10)
           | st.builds(lambda b: b.decode("utf-8", "surrogateescape"), st.binary(max_size=6)))
_VALUE = st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
_RECORD = st.dictionaries(st.text(max_size=8), _VALUE, max_size=20)
_TIME = st.integers(0, (1 << 32) * 10 ** 9 - 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(EDGESHIP_FORMS + OTHER_FORMS),
                          st.sampled_from(["app", "app.web"]),
                          st.lists(st.tuples(_TIME, _RECORD), min_size=1, max_size=12)),
                min_size=1, max_size=5))
def test_lazy_and_eager_paths_store_the_same_bytes(pair, batches):
    frames, forms = [], []
    for kind, tag, events in batches:
        made = frames_of(kind, tag, events)
        frames += made
        forms += [kind] * len(made)
    # Only edgeship's own form may stay packed (unless the depth bound, which counts the
    # bytes that could open a map or an array, cannot tell); anything else is decoded.
    packed = compare(*pair, frames)
    assert all(kind in EDGESHIP_FORMS for kind, kept in zip(forms, packed) if kept)


def test_what_an_edgeship_sender_sends_stays_packed(pair):
    events = [(T0 + n, {"ts": "2024-03-25T10:00:00Z", "user": 12345 + n,
                        "movie": "the+matrix+1999", "rating": 4, "event": "watch",
                        "tags": ["a", "b"], "geo": {"lat": 1.5, "lon": -2.25}})
              for n in range(300)]
    frames = [f for kind in EDGESHIP_FORMS for f in frames_of(kind, "app", events)]
    assert compare(*pair, frames) == [True] * len(frames)


def test_fluent_bits_frames_are_stored_alike(pair):
    names = ("out_forward_default", "out_forward_require_ack", "out_forward_gzip",
             "out_forward_metadata_retain_false", "out_forward_time_as_integer",
             "out_forward_handshake_keepalive_reuse")
    frames = [f for name in names for f in _frames(name)]
    packed = compare(*pair, frames)
    # Records from its log encoder (map32 headers) are decoded; those it sent with the
    # smallest headers (its keepalive test's dummy records) may stay packed.
    assert packed[0] is False and packed[-1] is True


def test_records_nested_past_the_bound_are_dropped_on_both_paths(pair):
    def nested(depth):
        record = inner = {}
        for _ in range(depth - 1):
            inner["d"] = {}
            inner = inner["d"]
        return record
    events = [(T0, {"n": 1}), (T0, nested(64)), (T0, nested(65)), (T0, {"n": 2})]
    lazy, eager = pair
    assert compare(lazy, eager, frames_of("forward", "app", events)) == [False]
    take(lazy, frames_of("forward", "app", events))
    ((_, count, _, _),), _ = stored(lazy)
    assert count == 3                               # the record of 65 levels dropped
    fine = frames_of("forward", "app", [events[0], events[1], events[3]])
    assert compare(lazy, eager, fine) == [True]     # 64 levels: kept packed
