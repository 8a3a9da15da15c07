"""edgeship.net.tls: the SSLContext of the tls.* keys verifies as OpenSSL's defaults do (as
Fluent Bit does) under every Python; the handshake runs in memory between two contexts."""
import ssl

import pytest

from edgeship.net.tls import tls_context
from mosquitto import Certs


def _handshake(client, server, hostname):
    """Run a TLS handshake between two contexts through memory BIOs; raises on failure."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = set()
    for _ in range(20):
        for name, side in (("client", c), ("server", s)):
            if name not in done:
                try:
                    side.do_handshake()
                    done.add(name)
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if len(done) == 2:
            return
    raise AssertionError("handshake did not finish")


@pytest.mark.e2e
def test_a_certificate_openssl_accepts_is_accepted_under_every_python(tmp_path):
    # The test CA has no keyUsage extension: OpenSSL (Fluent Bit) accepts it; Python 3.13's
    # default context (X509_STRICT) refused it.
    certs = Certs(str(tmp_path))
    server = tls_context({"tls": True, "tls.crt_file": certs.server_crt,
                          "tls.key_file": certs.server_key}, server=True)
    client = tls_context({"tls": True, "tls.verify": True, "tls.verify_hostname": True,
                          "tls.ca_file": certs.ca}, server=False)
    _handshake(client, server, "localhost")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(client, server, "elsewhere.example")
