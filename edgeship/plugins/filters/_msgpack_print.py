"""msgpack-c's ``msgpack_object_print``: how Fluent Bit's stdout filter (and the stdout
output's default format) shows a record: ``{"k"=>"v", "n"=>1, "f"=>1.500000, "x"=>nil}``."""

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
            "\t": "\\t"}


def _string(text):
    out = []
    for c in text:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif c < " " or c == "\x7f":
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    return '"%s"' % "".join(out)


def object_print(value):
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return "%d" % value
    if isinstance(value, float):
        return "%f" % value
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (bytes, bytearray)):
        return '"%s"' % value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return "{%s}" % ", ".join("%s=>%s" % (object_print(k), object_print(v))
                                  for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[%s]" % ", ".join(object_print(v) for v in value)
    return _string(str(value))
