"""lua filter: run a Lua function on every record (filter_lua), through the lupa package.

``function cb(tag, timestamp, record) return code, timestamp, record end`` with Fluent
Bit's codes: -1 drops the record, 0 keeps it unchanged, 1 replaces time and record, 2
replaces the record and keeps the time. The returned record may be an array of records,
which splits it into several (all with the returned time).

Keys: script (path, relative to the main config file's directory) or code (inline), call
(the function), protected_mode, time_as_table (time as {sec=, nsec=} both ways),
type_int_key / type_array_key (space-separated top-level keys forced to integer / array),
enable_flb_null (a null value reaches Lua as the global ``flb_null`` instead of nil).

As with LuaJIT in Fluent Bit, a whole number coming back from Lua is an integer (3.0 -> 3).
Differences: lupa always runs the call protected, so a runtime error is counted and
logged and the record kept even with protected_mode off (Fluent Bit would abort); keys
keep the order they had, new keys follow (Fluent Bit writes Lua's hash order).
"""
from edgeship.core import events as ev
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters._script import read_script

DROP, KEEP, MODIFIED, MODIFIED_KEEP_TIME = -1, 0, 1, 2


def _load_lupa():
    try:
        import lupa
    except ImportError as exc:
        raise ConfigError("lua: the Lua runtime is missing (%s): install edgeship's lua extra, "
                          "pip install 'edgeship[lua]'" % exc, key="name")
    return lupa


class LuaFilter(Filter):
    name = "lua"
    description = "Lua Scripting Filter"
    options = (
        Option("Script", help="Lua script file (relative to the config file's directory)"),
        Option("Code", help="inline Lua code, instead of Script"),
        Option("Call", required=True, help="name of the Lua function to call"),
        Option("Protected_Mode", "bool", "true", help="accepted: edgeship always runs the call protected"),
        Option("Time_As_Table", "bool", "false", help="pass the time as {sec=, nsec=}"),
        Option("Type_Int_Key", help="space-separated keys whose values become integers"),
        Option("Type_Array_Key", help="space-separated keys whose tables become arrays"),
        Option("Enable_Flb_Null", "bool", "false", help="null reaches Lua as flb_null"),
    )

    def configure(self):
        lupa = _load_lupa()
        self.lua_type = lupa.lua_type
        conf = self.conf
        if bool(conf["script"]) == bool(conf["code"]):
            raise ConfigError("lua: set exactly one of 'script' or 'code'", key="script")
        if conf["code"]:
            key, origin, source = "code", "code", conf["code"]
        else:
            key = "script"
            origin, source = read_script(self)
        self.lua = lupa.LuaRuntime(unpack_returned_tuples=True)
        try:
            self.lua.execute(source)
        except lupa.LuaSyntaxError as exc:
            raise ConfigError("lua: syntax error in %s: %s" % (origin, exc), key=key)
        except lupa.LuaError as exc:
            raise ConfigError("lua: error running %s: %s" % (origin, exc), key=key)
        self.function = self.lua.globals()[conf["call"]]
        if self.lua_type(self.function) != "function":
            raise ConfigError("lua: function '%s' is not defined in %s"
                              % (conf["call"], origin), key="call")
        self.lua_error = lupa.LuaError
        self.int_keys = tuple((conf["type_int_key"] or "").split())
        self.array_keys = frozenset((conf["type_array_key"] or "").split())
        self.null = self.is_null = None
        if conf["enable_flb_null"]:
            self.lua.execute("flb_null = setmetatable({}, {__name = 'flb_null'})")
            self.null = self.lua.globals().flb_null
            self.is_null = self.lua.eval("function(v) return rawequal(v, flb_null) end")
        self.time_as_table = conf["time_as_table"]
        self.errors = 0

    # ---------------------------------------------------------------- Python <-> Lua
    def _to_lua(self, value):
        if isinstance(value, dict):
            return self.lua.table_from({k: self._to_lua(v) for k, v in value.items()})
        if isinstance(value, (list, tuple)):
            return self.lua.table_from([self._to_lua(v) for v in value])
        if value is None:
            return self.null
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        return value

    def _from_lua(self, value, force_array=False):
        if self.lua_type(value) != "table":
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, bytes):
                return value.decode("utf-8", "replace")
            return value
        if self.is_null is not None and self.is_null(value):
            return None
        items = list(value.items())
        keys = [k for k, _ in items]
        if (items or force_array) and all(isinstance(k, int) for k in keys) \
                and sorted(keys) == list(range(1, len(keys) + 1)):
            return [self._from_lua(v) for _, v in sorted(items)]
        return {self._key(k): self._from_lua(v, self._key(k) in self.array_keys)
                for k, v in items}

    @staticmethod
    def _key(key):
        return key.decode("utf-8", "replace") if isinstance(key, bytes) else key

    def _time_in(self, time_ns):
        if self.time_as_table:
            sec, nsec = ev.split(time_ns)
            return self.lua.table_from({"sec": sec, "nsec": nsec})
        return time_ns / ev.NS

    def _time_out(self, value, fallback):
        """The returned timestamp as nanoseconds; one an event cannot carry raises, so the
        record is kept unchanged (Fluent Bit: "invalid table returned")."""
        if self.lua_type(value) == "table":
            sec, nsec = value["sec"] or 0, value["nsec"] or 0
            try:
                time_ns = int(sec) * ev.NS + int(nsec)
            except OverflowError:   # an infinity
                time_ns = -1
            if not ev.in_range(time_ns):
                raise ValueError("timestamp {sec=%r, nsec=%r} out of range" % (sec, nsec))
            return time_ns
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            time_ns = ev.checked_seconds(value)
            if time_ns is None:
                raise ValueError("timestamp %r out of range" % (value,))
            return time_ns
        return fallback

    # -------------------------------------------------------------------------- filter
    def _call(self, tag, time_ns, record):
        """The events this record becomes; raises on a script error or a bad return."""
        result = self.function(tag, self._time_in(time_ns), self._to_lua(record))
        if not isinstance(result, tuple):
            result = (result,)
        code = result[0]
        if code == DROP:
            return []
        if code == KEEP or code is None:
            return [(time_ns, record)]
        if code not in (MODIFIED, MODIFIED_KEEP_TIME) or len(result) < 3:
            raise ValueError("unexpected return code %r" % (code,))
        if code == MODIFIED:
            time_ns = self._time_out(result[1], time_ns)
        table = result[2]
        if self.lua_type(table) != "table":
            raise ValueError("the returned record is not a table")
        converted = self._from_lua(table)
        parts = converted if isinstance(converted, list) else [converted]
        out = []
        for part in parts:
            if not isinstance(part, dict):
                raise ValueError("the returned record is not a map")
            out.append((time_ns, self._record_order(part, record)))
        return out

    def _record_order(self, new, original):
        ordered = {k: new[k] for k in original if k in new}
        for k, v in new.items():
            if k not in ordered:
                ordered[k] = v
        for key in self.int_keys:
            value = ordered.get(key)
            if isinstance(value, float):
                ordered[key] = int(value)
        return ordered

    def filter(self, tag, events):
        out = []
        errors = 0
        last = None
        for time_ns, record in events:
            try:
                out.extend(self._call(tag, time_ns, record))
            except (self.lua_error, ValueError, TypeError) as exc:
                errors += 1
                last = exc
                out.append((time_ns, record))
        if errors:
            self.errors += errors
            self.log.error("%d record(s) kept unchanged after a Lua error: %s", errors, last)
        return out


PLUGIN = LuaFilter
