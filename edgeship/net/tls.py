"""TLS options (Fluent Bit's ``tls.*`` keys) and the SSLContext they describe.

``ssl`` is imported only when a context is built: the CLI keeps ssl (and libcrypto, a
quarter of the idle memory on a Pi) out of the process unless a section turns TLS on, so a
plugin module may import this one at start-up.
"""
from edgeship.core.errors import ConfigError, StartError
from edgeship.core.files import check_regular
from edgeship.core.schema import Option

TLS_OPTIONS = (
    Option("tls", "bool", "off", help="use TLS"),
    Option("tls.verify", "bool", "on", help="verify the peer's certificate"),
    Option("tls.verify_hostname", "bool", "off", help="check the certificate's host name"),
    Option("tls.verify_client_cert", "bool", "off",
           help="servers: require a client certificate signed by tls.ca_file"),
    Option("tls.ca_file", help="CA certificates file (PEM)"),
    Option("tls.ca_path", help="directory of CA certificates"),
    Option("tls.crt_file", help="certificate file (PEM)"),
    Option("tls.key_file", help="private key file (PEM)"),
    Option("tls.key_passwd", help="password of the private key"),
    Option("tls.vhost", help="host name sent as SNI and, with tls.verify_hostname, looked "
           "for in the certificate (default: the host)"),
    Option("tls.debug", "int", "1", compat=True),
    Option("tls.min_version", help="lowest TLS version (TLSv1.2, TLSv1.3)"),
    Option("tls.max_version", help="highest TLS version (TLSv1.2, TLSv1.3)"),
    Option("tls.ciphers", help="OpenSSL cipher list"),
)


def tls_context(conf, server):
    """An SSLContext from the ``tls.*`` keys of ``conf``, or None when ``tls`` is off.
    Raises ConfigError naming the key when a file or value cannot be used."""
    if not conf.get("tls"):
        return None
    import ssl

    versions = {"tlsv1.1": ssl.TLSVersion.TLSv1_1, "tlsv1.2": ssl.TLSVersion.TLSv1_2,
                "tlsv1.3": ssl.TLSVersion.TLSv1_3}
    purpose = ssl.Purpose.CLIENT_AUTH if server else ssl.Purpose.SERVER_AUTH
    for key in ("tls.ca_file", "tls.crt_file", "tls.key_file"):
        if conf.get(key):
            try:
                check_regular(conf[key])  # a FIFO or device would hang the load
            except OSError as exc:
                raise StartError("cannot load '%s': %s" % (conf[key], exc.strerror or exc),
                                 key=key)
    ctx = ssl.create_default_context(purpose)
    # Verify as OpenSSL does by default, as Fluent Bit does, whatever the Python: 3.13 turns on
    # X509_STRICT (which refuses, say, a CA without keyUsage) and PARTIAL_CHAIN.
    ctx.verify_flags &= ~(ssl.VERIFY_X509_STRICT | getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0))
    if conf.get("tls.ca_file") or conf.get("tls.ca_path"):
        try:
            ctx.load_verify_locations(conf.get("tls.ca_file"), conf.get("tls.ca_path"))
        except (OSError, ssl.SSLError) as exc:
            raise StartError("cannot load the CA certificates: %s" % exc,
                             key="tls.ca_file" if conf.get("tls.ca_file") else "tls.ca_path")
    if conf.get("tls.crt_file"):
        try:
            ctx.load_cert_chain(conf["tls.crt_file"], conf.get("tls.key_file"),
                                conf.get("tls.key_passwd"))
        except (OSError, ssl.SSLError) as exc:
            raise StartError("cannot load the certificate or its key: %s" % exc,
                             key="tls.crt_file")
    elif server:
        raise ConfigError("TLS needs tls.crt_file and tls.key_file", key="tls.crt_file")
    for key, attr in (("tls.min_version", "minimum_version"),
                      ("tls.max_version", "maximum_version")):
        if conf.get(key):
            version = versions.get(conf[key].lower())
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
        ctx.verify_mode = ssl.CERT_REQUIRED if conf.get("tls.verify_client_cert") \
            else ssl.CERT_NONE
    else:
        ctx.check_hostname = bool(conf.get("tls.verify") and conf.get("tls.verify_hostname"))
        if not conf.get("tls.verify"):
            ctx.verify_mode = ssl.CERT_NONE
    return ctx
