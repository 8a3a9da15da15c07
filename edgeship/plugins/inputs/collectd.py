"""collectd input: values from collectd's network plugin (binary protocol over UDP), one
record per value list (in_collectd).

Kept from Fluent Bit 5.1.1:
- Listens on ``0.0.0.0:25826``; ``TypesDB`` (default ``/usr/share/collectd/types.db``, a
  comma list of files, a later definition of a type winning) names each value of a type. A
  types file that cannot be read or parsed stops the input from starting (a warning only in
  ``--dry-run``, which does not start plugins).
- Parts set the host, time, interval, plugin, plugin instance, type and type instance for
  the value lists after them in the datagram (strings only when NUL-terminated; high-
  resolution times are 2^-30 seconds). Each value list becomes
  ``{"type", "type_instance", "time", "interval", "plugin", "plugin_instance", "host",
  <value name>: value...}``, the keys in that order and each only when set (times above
  0); a COUNTER or ABSOLUTE value is an unsigned integer, DERIVE a signed one, GAUGE a
  double (little-endian, as collectd sends it). The record is stamped when read. Unknown
  parts (signatures, encrypted parts, notifications) are skipped.

Differences (README "Where edgeship differs"): a bad part loses only itself: a value list of
an unknown type, a wrong count or an unknown data type, or a time too short, is skipped with
the rest of the datagram kept, and a part with a bad length ends the datagram but keeps the
records before it (Fluent Bit drops the whole datagram in every case). Errors are logged once per batch of
datagrams, with their count.
"""
import struct

from edgeship.core import events as ev
from edgeship.core.errors import StartError
from edgeship.core.schema import Option
from edgeship.plugins.inputs._sockets import NET_OPTIONS, ListeningInput

DEFAULT_PORT = 25826
DEFAULT_TYPESDB = "/usr/share/collectd/types.db"
MAX_DATAGRAM = 65535
HIGH_RESOLUTION = 1 << 30        # collectd's "cdtime": seconds * 2^30

HOST, TIME, PLUGIN, PLUGIN_INSTANCE, TYPE, TYPE_INSTANCE, VALUES, INTERVAL, TIME_HR, \
    INTERVAL_HR = range(10)
_STRINGS = {HOST: "host", PLUGIN: "plugin", PLUGIN_INSTANCE: "plugin_instance",
            TYPE: "type", TYPE_INSTANCE: "type_instance"}
_TIMES = {TIME: ("time", 1), TIME_HR: ("time", HIGH_RESOLUTION),
          INTERVAL: ("interval", 1), INTERVAL_HR: ("interval", HIGH_RESOLUTION)}
_HEADER_ORDER = ("type", "type_instance", "time", "interval", "plugin", "plugin_instance",
                 "host")
# Data source types: how each 8-byte value reads.
_VALUE_FORMATS = {0: ">Q", 1: "<d", 2: ">q", 3: ">Q"}   # COUNTER, GAUGE, DERIVE, ABSOLUTE


class TypesDbError(ValueError):
    pass


def parse_types_db(text, types=None):
    """{type: [value names]} of a types.db text, added to ``types``. A line is ``TYPE``,
    spaces, then ``NAME:KIND:MIN:MAX`` items separated by spaces or commas; ``#`` starts a
    comment line. Raises TypesDbError for a line Fluent Bit refuses."""
    types = {} if types is None else types
    for number, line in enumerate(text.replace("\r", "\n").split("\n"), 1):
        if not line or line.startswith("#"):
            continue
        name, space, rest = line.partition(" ")
        items = rest.replace(",", " ").split(" ")
        fields = [item for item in items if item]
        if not space or not fields:
            raise TypesDbError("line %d: a type without values" % number)
        names = []
        for field in fields:
            value_name, colon, _ = field.partition(":")
            if not colon:
                raise TypesDbError("line %d: cannot add value '%s'" % (number, field))
            names.append(value_name)
        types[name] = names
    return types


def _c_string(data):
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


def decode(data, types, errors):
    """The records of one datagram; ``errors`` gets a message per bad part."""
    records = []
    header = {}
    offset, end = 0, len(data)
    while end - offset >= 4:
        part_type, part_len = struct.unpack_from(">HH", data, offset)
        if part_len < 4 or end - offset < part_len:
            errors.append("invalid part length (%d, remaining %d)" % (part_len, end - offset))
            break
        body = data[offset + 4:offset + part_len]
        offset += part_len
        if part_type in _STRINGS:
            if body and body[-1] == 0:
                header[_STRINGS[part_type]] = _c_string(body)
        elif part_type in _TIMES:
            if len(body) < 8:
                errors.append("data truncated (%d < 8)" % len(body))
                continue
            key, scale = _TIMES[part_type]
            header[key] = struct.unpack_from(">Q", body)[0] / scale
        elif part_type == VALUES:
            record = _values(body, header, types, errors)
            if record is not None:
                records.append(record)
    return records


def _values(body, header, types, errors):
    kind = header.get("type")
    if kind is None:
        errors.append("invalid data (type is NULL)")
        return None
    count = struct.unpack_from(">H", body)[0] if len(body) >= 2 else -1
    if len(body) != 2 + count * 9:
        errors.append("data corrupted (size=%d, count=%d)" % (len(body), count))
        return None
    names = types.get(kind)
    if names is None:
        errors.append("no such type found '%s'" % kind)
        return None
    if len(names) != count:
        errors.append("invalid value for '%s' (%d != %d)" % (kind, len(names), count))
        return None
    record = {}
    for key in _HEADER_ORDER:
        value = header.get(key)
        if value is not None and (key not in ("time", "interval") or value > 0):
            record[key] = value
    for index, name in enumerate(names):
        value_format = _VALUE_FORMATS.get(body[2 + index])
        if value_format is None:
            errors.append("unknown data type %d" % body[2 + index])
            return None
        record[name] = struct.unpack_from(value_format, body, 2 + count + 8 * index)[0]
    return record


class CollectdInput(ListeningInput):
    name = "collectd"
    description = "collectd input plugin"
    options = (
        Option("Listen", default="0.0.0.0", aliases=("host",), help="address to listen on"),
        Option("Port", "int", str(DEFAULT_PORT), min=0, max=65535, help="UDP port"),
        Option("TypesDB", default=DEFAULT_TYPESDB,
               help="collectd's types.db files (comma separated)"),
    ) + NET_OPTIONS

    def configure(self):
        self.types = {}
        for path in self.conf["typesdb"].split(","):
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    parse_types_db(f.read(), self.types)
            except (OSError, TypesDbError) as exc:
                raise StartError("collectd: failed to load '%s': %s" % (path, exc),
                                 key="typesdb")

    async def run(self):
        await self.serve_datagrams(self._take, MAX_DATAGRAM)

    def _take(self, datagrams):
        now = ev.now_ns()
        errors = []
        events = []
        for data, _ in datagrams:
            events.extend((now, record) for record in decode(data, self.types, errors))
        if errors:
            self.log.error("%s (%d bad part(s) in this read)", errors[0], len(errors))
        if events:
            self.context.emit(self.tag, events, sum(len(data) for data, _ in datagrams))


PLUGIN = CollectdInput
