"""Digests of the forward protocol: chunk ids and the secure-forward handshake's SHA-512
(with a pure-Python SHA-512 for runtimes whose hashlib lacks it, as MicroPython's)."""
import binascii
import struct

from edgeship.core.forward.wire import utf8_bytes


def _bits(n):
    # int.bit_length is missing on MicroPython
    count = 0
    while n:
        n >>= 8
        count += 8
    return count


def _isqrt(n):
    x = 1 << ((_bits(n) + 1) // 2)
    while True:
        y = (x + n // x) // 2
        if y >= x:
            return x
        x = y


def _icbrt(n):
    x = 1 << ((_bits(n) + 2) // 3)
    while True:
        y = (2 * x + n // (x * x)) // 3
        if y >= x:
            return x
        x = y


_SHA512 = []


def _sha512_constants():
    # FIPS 180-4: the fractional bits of the square / cube roots of the first primes,
    # computed once rather than typed in (fewer chances of a wrong digit).
    if not _SHA512:
        primes = []
        n = 2
        while len(primes) < 80:
            if all(n % p for p in primes):
                primes.append(n)
            n += 1
        mask = (1 << 64) - 1
        _SHA512.append([_icbrt(p << 192) & mask for p in primes])
        _SHA512.append([_isqrt(p << 128) & mask for p in primes[:8]])
    return _SHA512


def _sha512_pure(data):
    """SHA-512 for runtimes whose hashlib lacks it (MicroPython)."""
    k, initial = _sha512_constants()
    mask = (1 << 64) - 1
    h = list(initial)
    length = len(data)
    data = bytes(data) + b"\x80" + b"\x00" * ((111 - length) % 128) + struct.pack(">QQ", 0, length * 8)
    for off in range(0, len(data), 128):
        w = list(struct.unpack(">16Q", data[off:off + 128]))
        for i in range(16, 80):
            a, b = w[i - 15], w[i - 2]
            s0 = ((a >> 1 | a << 63) ^ (a >> 8 | a << 56) ^ (a >> 7)) & mask
            s1 = ((b >> 19 | b << 45) ^ (b >> 61 | b << 3) ^ (b >> 6)) & mask
            w.append((w[i - 16] + s0 + w[i - 7] + s1) & mask)
        a, b, c, d, e, f, g, hh = h
        for i in range(80):
            s1 = ((e >> 14 | e << 50) ^ (e >> 18 | e << 46) ^ (e >> 41 | e << 23)) & mask
            t1 = (hh + s1 + ((e & f) ^ (~e & g)) + k[i] + w[i]) & mask
            s0 = ((a >> 28 | a << 36) ^ (a >> 34 | a << 30) ^ (a >> 39 | a << 25)) & mask
            t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) & mask
            a, b, c, d, e, f, g, hh = (t1 + t2) & mask, a, b, c, (d + t1) & mask, e, f, g
        h = [(x + y) & mask for x, y in zip(h, (a, b, c, d, e, f, g, hh))]
    return struct.pack(">8Q", *h)


def sha512(data):
    # Imported here: hashlib loads libcrypto (megabytes of RSS), which only acks and
    # shared keys need.
    try:
        import hashlib
    except ImportError:  # pragma: no cover - every port has it, the fallback is below
        hashlib = None
    if hashlib is not None and hasattr(hashlib, "sha512"):
        return hashlib.sha512(data).digest()
    return _sha512_pure(data)


def sha512_hex(data):
    return binascii.hexlify(sha512(data)).decode()


def chunk_id(payload):
    """Fluent Bit's chunk option: base64 of the first 16 bytes of sha512(payload)."""
    return binascii.b2a_base64(sha512(payload)[:16]).decode().strip()


def shared_key_digest(salt, hostname, nonce, key):
    """PING (client hostname) and PONG (server hostname) shared-key digest."""
    return sha512_hex(utf8_bytes(salt) + utf8_bytes(hostname) + utf8_bytes(nonce) + utf8_bytes(key))


def password_digest(auth, username, password):
    return sha512_hex(utf8_bytes(auth) + utf8_bytes(username) + utf8_bytes(password))
