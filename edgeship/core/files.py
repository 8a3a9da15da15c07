"""Reading the local files a config names (config files and their includes, parsers and
upstream files, scripts, TLS certificates): ``LocalFiles``, the ``files`` object of the sans-IO
config reader (core/config.py), and ``read_bytes`` / ``check_regular`` / ``open_regular`` for
the rest.

In core because every layer that opens a path a user wrote needs these checks (the engine's
loader, net's TLS options, the script filters, the forward output's upstream file) and core is
the one layer all of them may import. Plain ``os.stat`` and ``open`` only, which MicroPython
has too; the protocols in core stay sans-IO.

Every bad path ends as an OSError with words a config error can show: a NUL byte, a name too
long, a directory, a FIFO, socket or device (open would block or never end), a file larger
than any config. Python raises ValueError for some of these; they never escape from here.

On MicroPython (tests/core/test_files.py runs there too) files are opened with ``open`` (it
has no ``os.open``), glob patterns are refused (no ``glob`` module), and a file that is not
UTF-8 raises UnicodeError in ``LocalFiles.read`` (its decode has no "replace"); the firmware
reads no config file.
"""
import errno
import os

try:
    from glob import glob as _glob
except ImportError:  # MicroPython
    _glob = None

# No config, parsers file or script is this large; a larger one is a wrong path.
MAX_FILE_BYTES = 16 * 1024 * 1024

# os.stat results by index (MicroPython's stat is a plain tuple) and the file type bits.
_MODE, _INODE, _DEVICE, _SIZE = 0, 1, 2, 6
_FILE_TYPE, _DIRECTORY, _REGULAR = 0o170000, 0o040000, 0o100000
_EFBIG = getattr(errno, "EFBIG", 27)    # MicroPython's errno lacks it
# CPython opens non-blocking (see read_bytes); MicroPython has no os.open.
_OPEN_FLAGS = (os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
               if hasattr(os, "O_NONBLOCK") else None)


def _stat(path):
    # Checked here: CPython raises ValueError ("embedded null byte"), MicroPython cuts the
    # path at the NUL and would look at another file.
    if "\0" in path:
        raise OSError(errno.EINVAL, "the path holds a NUL byte")
    return os.stat(path)


def _check_regular(st, max_bytes=MAX_FILE_BYTES):
    kind = st[_MODE] & _FILE_TYPE
    if kind == _DIRECTORY:
        raise OSError(errno.EISDIR, "Is a directory")
    if kind != _REGULAR:
        raise OSError(errno.EINVAL, "not a regular file (a FIFO, socket or device)")
    if max_bytes is not None and st[_SIZE] > max_bytes:
        raise OSError(_EFBIG, "larger than %d bytes" % max_bytes)


def check_regular(path, max_bytes=MAX_FILE_BYTES):
    """OSError unless ``path`` is a regular file of a config's size (for files a library
    opens itself, such as TLS certificates). ``max_bytes=None`` for data files of any size
    (a GeoIP database, a checklist of millions of lines)."""
    _check_regular(_stat(path), max_bytes)


def read_bytes(path):
    """The content of the regular file ``path``; OSError for anything else."""
    check_regular(path)
    if _OPEN_FLAGS is None:
        # read(n) allocates n bytes at once there; the size was just checked.
        with open(path, "rb") as f:
            data = f.read()
    else:
        # O_NONBLOCK: should the path become a FIFO between stat and open, open does not hang.
        fd = os.open(path, _OPEN_FLAGS)
        try:
            _check_regular(os.fstat(fd))
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read(MAX_FILE_BYTES + 1)
        finally:
            os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise OSError(_EFBIG, "larger than %d bytes" % MAX_FILE_BYTES)
    return data


def open_regular(path):
    """The regular file ``path`` opened for reading bytes, whatever its size (a data file a
    plugin reads line by line, such as a checklist); OSError for anything else."""
    check_regular(path, None)
    if _OPEN_FLAGS is None:
        return open(path, "rb")
    fd = os.open(path, _OPEN_FLAGS)   # O_NONBLOCK: as read_bytes, a FIFO cannot hang it
    try:
        _check_regular(os.fstat(fd), None)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class LocalFiles:
    def read(self, path):
        # Invalid UTF-8 is kept as U+FFFD: Fluent Bit reads bytes and never checks them.
        return read_bytes(path).decode("utf-8", "replace")

    def glob(self, pattern):
        if _glob is None:
            raise OSError(errno.EOPNOTSUPP, "glob patterns are not supported on this Python")
        # Fluent Bit reads glob matches unsorted (GLOB_NOSORT); sorted is the predictable
        # subset of that behaviour.
        try:
            return sorted(_glob(pattern))
        except ValueError:
            raise OSError(errno.EINVAL, "the pattern holds a NUL byte")

    def identity(self, path):
        st = _stat(path)
        return (st[_DEVICE], st[_INODE])
