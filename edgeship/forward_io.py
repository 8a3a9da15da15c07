"""The CPython side of the forward protocol, shared by the forward input and output.

``edgeship.core.forward`` is sans-IO and MicroPython-importable, so it cannot import the
msgpack package; it takes a codec instead, and ``MsgpackCodec`` here is that codec on
CPython (msgpack's C unpacker is already an incremental, bytes-in decoder). Beside it: TLS
contexts and the upstream file reader, which only CPython plugins need.
"""
import os

import msgpack

from edgeship.core import forward
from edgeship.core.config import UPSTREAM_SECTIONS
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option, Schema


class MsgpackCodec:
    """str stays str even when it is not UTF-8 (surrogateescape), so salts and odd record
    values survive a decode/encode round trip byte for byte."""

    def __init__(self):
        self.packb = msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape",
                                    default=_default).pack

    def unpacker(self, limit):
        return msgpack.Unpacker(raw=False, unicode_errors="surrogateescape",
                                ext_hook=forward.ext_hook, max_buffer_size=max(limit, 1024),
                                strict_map_key=False)


def _default(value):
    """Values msgpack cannot pack as they are: the forward input's own decoded types."""
    if isinstance(value, forward.EventTime):
        return msgpack.ExtType(0, forward.pack_event_time(value.ns)[2:])
    if isinstance(value, forward.Ext):
        return msgpack.ExtType(value.code, value.data)
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


# ------------------------------------------------------------------ TLS
TLS_OPTIONS = (
    Option("tls", "bool", "off", help="use TLS"),
    Option("tls.verify", "bool", "on", help="verify the peer's certificate"),
    Option("tls.verify_hostname", "bool", "off", help="check the certificate's host name"),
    Option("tls.ca_file", help="CA certificates file (PEM)"),
    Option("tls.ca_path", help="directory of CA certificates"),
    Option("tls.crt_file", help="certificate file (PEM)"),
    Option("tls.key_file", help="private key file (PEM)"),
    Option("tls.key_passwd", help="password of the private key"),
    Option("tls.vhost", help="host name sent as SNI"),
    Option("tls.debug", "int", "1", help="accepted for compatibility"),
    Option("tls.min_version", help="lowest TLS version (TLSv1.2, TLSv1.3)"),
    Option("tls.max_version", help="highest TLS version (TLSv1.2, TLSv1.3)"),
    Option("tls.ciphers", help="OpenSSL cipher list"),
)

def tls_context(conf, server):
    """An SSLContext from the ``tls.*`` keys of ``conf``, or None when ``tls`` is off.
    Raises ConfigError naming the key when a file cannot be loaded."""
    if not conf.get("tls"):
        return None
    import ssl  # only when TLS is on: the CLI keeps libcrypto out of the process otherwise
    purpose = ssl.Purpose.CLIENT_AUTH if server else ssl.Purpose.SERVER_AUTH
    ctx = ssl.create_default_context(purpose)
    try:
        if conf.get("tls.ca_file") or conf.get("tls.ca_path"):
            ctx.load_verify_locations(conf.get("tls.ca_file"), conf.get("tls.ca_path"))
        if conf.get("tls.crt_file"):
            ctx.load_cert_chain(conf["tls.crt_file"], conf.get("tls.key_file"),
                                conf.get("tls.key_passwd"))
        elif server:
            raise ConfigError("TLS needs tls.crt_file and tls.key_file", key="tls.crt_file")
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("cannot load TLS files: %s" % exc, key="tls.crt_file")
    for key, attr in (("tls.min_version", "minimum_version"), ("tls.max_version", "maximum_version")):
        if conf.get(key):
            version = getattr(ssl.TLSVersion, conf[key].upper().replace("TLSV", "TLSv").replace(".", "_"), None)
            if version is None:
                raise ConfigError("unknown TLS version '%s'" % conf[key], key=key)
            setattr(ctx, attr, version)
    if conf.get("tls.ciphers"):
        try:
            ctx.set_ciphers(conf["tls.ciphers"])
        except ssl.SSLError as exc:
            raise ConfigError("invalid tls.ciphers: %s" % exc, key="tls.ciphers")
    if server:
        # Fluent Bit's server side asks for a client certificate only when told to.
        ctx.verify_mode = ssl.CERT_REQUIRED if conf.get("tls.verify_client_cert") else ssl.CERT_NONE
    else:
        ctx.check_hostname = bool(conf.get("tls.verify") and conf.get("tls.verify_hostname"))
        if not conf.get("tls.verify"):
            ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ------------------------------------------------------------------ upstream files
NODE_OPTIONS = (
    Option("Name", help="node name, used in logs"),
    Option("Host", default="127.0.0.1", help="host of the node"),
    Option("Port", "int", str(forward.DEFAULT_PORT), help="TCP port of the node"),
    Option("Shared_Key", help="secure-forward shared key of this node"),
    Option("Empty_Shared_Key", "bool", "off", help="use an empty shared key"),
    Option("Self_Hostname", help="host name sent in PING to this node"),
    Option("Username", help="secure-forward user name"),
    Option("Password", help="secure-forward password"),
) + TLS_OPTIONS
NODE_SCHEMA = Schema("upstream node", NODE_OPTIONS)


def read_upstream(path, reader):
    """``(name, [node conf])`` from a classic upstream file: one ``[UPSTREAM]`` with a
    Name, then one ``[NODE]`` per server. ``reader`` is the engine's ClassicReader."""
    sections = reader.read_other(path, UPSTREAM_SECTIONS)
    name = None
    nodes = []
    for section in sections:
        if section.kind == "UPSTREAM":
            if name is not None:
                raise ConfigError("more than one [UPSTREAM] section", section.file, section.line)
            name = section.get("name")
            if not name:
                raise ConfigError("[UPSTREAM] without a Name", section.file, section.line, "name")
            continue
        conf = NODE_SCHEMA.build(section.entries, (section.file, section.line))
        conf["where"] = (section.file, section.line)
        nodes.append(conf)
    if name is None:
        raise ConfigError("no [UPSTREAM] section in upstream file", path)
    if not nodes:
        raise ConfigError("upstream '%s' has no [NODE] section" % name, path)
    return name, nodes


def random_bytes(n=16):
    return os.urandom(n)
