"""Azure's Shared Key authorization, for the azure (Log Analytics) and azure_blob (Blob
Storage) outputs: the key read as Fluent Bit's base64 decoder reads it, the x-ms-date
stamp, the signature (base64 HMAC-SHA256 keyed with the decoded key) and Blob Storage's
string to sign as Fluent Bit 5.1.1 composes it (azure_blob_http.c).
"""
import base64
import hashlib
import hmac
import string
import time

_BASE64 = frozenset(string.ascii_letters + string.digits + "+/")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def decode_shared_key(text):
    """The key bytes of a shared key as Fluent Bit's base64 decoder reads it; ValueError
    for what it refuses."""
    data = []
    pads = 0
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.rstrip(" ")        # spaces are allowed before a line end only
        for char in line:
            if char == "=":
                pads += 1
                if pads > 2:
                    raise ValueError("more than two '='")
            elif char not in _BASE64:
                raise ValueError("'%s' is not a base64 character" % char)
            elif pads:
                raise ValueError("data after '='")
        data.append(line)
    data = "".join(data)
    return base64.b64decode(data[:len(data) // 4 * 4])


def signature(key, text):
    """The base64 HMAC-SHA256 of ``text`` keyed with the decoded ``key``."""
    digest = hmac.new(key, text.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def ms_date(now=None):
    """The x-ms-date of ``now`` (seconds, default the clock): ``Tue, 24 Nov 2026 19:43:13
    GMT``, in English whatever the locale."""
    tm = time.gmtime(time.time() if now is None else now)
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[tm.tm_wday], tm.tm_mday, _MONTHS[tm.tm_mon - 1], tm.tm_year, tm.tm_hour,
        tm.tm_min, tm.tm_sec)


def _unquote(text):
    """%XX sequences decoded, as azb_uri_decode does (bytes kept as they are)."""
    if "%" not in text:
        return text
    raw = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25 and i + 2 < len(raw) and \
                all(chr(c) in string.hexdigits for c in raw[i + 1:i + 3]):
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


def blob_string_to_sign(method, account, uri, headers, content_length=None,
                        content_type="", content_encoding=""):
    """Blob Storage's Shared Key string to sign, as Fluent Bit composes it: the verb;
    Content-Encoding, Content-Language, Content-Length (empty for none), Content-MD5,
    Content-Type, Date, If-* and Range lines; the ``x-ms-`` headers in the order they are
    sent (``name:value``); the canonical resource ``/<account><path>`` then each query
    parameter on its own line as ``name:value`` in the order of the URI. The path is signed
    as it is sent (encoded), the query's names and values decoded, as Azure documents it."""
    path, _, query = uri.partition("?")
    lines = [method, content_encoding or "", "",
             "" if content_length is None else "%d" % content_length, "", content_type or "",
             "", "", "", "", "", ""]
    text = "\n".join(lines) + "\n"
    text += "".join("%s:%s\n" % (name, value) for name, value in headers
                    if name.startswith("x-ms-"))
    text += "/%s%s" % (account, path)
    if query:
        for pair in query.split("&"):
            name, _, value = pair.partition("=")
            text += "\n%s:%s" % (_unquote(name), _unquote(value))
    return text
