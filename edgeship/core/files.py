"""Reading the files a config names (config files, includes, parsers and upstream files,
scripts), on CPython: the ``files`` object of the sans-IO config reader, and ``read_bytes``.

Every bad path ends as an OSError with words a config error can show: a NUL byte, a name too
long, a directory, a FIFO, socket or device (open would block or never end), a file larger
than any config. Python raises ValueError for some of these; they never escape from here.
"""
import errno
import glob
import os
import stat

# No config, parsers file or script is this large; a larger one is a wrong path.
MAX_FILE_BYTES = 16 * 1024 * 1024


def _stat(path):
    try:
        return os.stat(path)
    except ValueError:  # "embedded null byte"
        raise OSError(errno.EINVAL, "the path holds a NUL byte")


def _check_regular(st):
    if stat.S_ISDIR(st.st_mode):
        raise OSError(errno.EISDIR, "Is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file (a FIFO, socket or device)")
    if st.st_size > MAX_FILE_BYTES:
        raise OSError(errno.EFBIG, "larger than %d bytes" % MAX_FILE_BYTES)


def check_regular(path):
    """OSError unless ``path`` is a regular file of a config's size (for files a library
    opens itself, such as TLS certificates)."""
    _check_regular(_stat(path))


def read_bytes(path):
    """The content of the regular file ``path``; OSError for anything else."""
    check_regular(path)
    # O_NONBLOCK: should the path become a FIFO between stat and open, open does not hang.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_regular(os.fstat(fd))
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise OSError(errno.EFBIG, "larger than %d bytes" % MAX_FILE_BYTES)
    return data


class LocalFiles:
    def read(self, path):
        # Invalid UTF-8 is kept as U+FFFD: Fluent Bit reads bytes and never checks them.
        return read_bytes(path).decode("utf-8", "replace")

    def glob(self, pattern):
        # Fluent Bit reads glob matches unsorted (GLOB_NOSORT); sorted is the predictable
        # subset of that behaviour.
        try:
            return sorted(glob.glob(pattern))
        except ValueError:
            raise OSError(errno.EINVAL, "the pattern holds a NUL byte")

    def identity(self, path):
        st = _stat(path)
        return (st.st_dev, st.st_ino)
