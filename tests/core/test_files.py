"""edgeship.core.files on real files, under CPython and MicroPython: what a config may name
is read, anything else is an OSError with words a config error can show."""
import errno
import os
import random
import sys

from edgeship.core.files import (MAX_FILE_BYTES, LocalFiles, check_regular, open_regular,
                                 read_bytes)


def _folder():
    path = "/tmp/edgeship-core-files-%d" % random.getrandbits(30)
    os.mkdir(path)
    return path


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _remove(folder):
    for name in os.listdir(folder):
        os.remove(folder + "/" + name)
    os.rmdir(folder)


def _error(call, path):
    try:
        call(path)
    except OSError as exc:
        return exc
    raise AssertionError("no OSError for %r" % path)


def test_a_regular_file_is_read_whole():
    folder = _folder()
    try:
        path = folder + "/main.conf"
        _write(path, b"[SERVICE]\n    Flush 1\n")
        assert read_bytes(path) == b"[SERVICE]\n    Flush 1\n"
        assert LocalFiles().read(path) == "[SERVICE]\n    Flush 1\n"
        check_regular(path)
    finally:
        _remove(folder)


def test_a_directory_a_missing_file_and_a_nul_byte_are_refused():
    folder = _folder()
    try:
        _write(folder + "/a", b"x")
        assert _error(read_bytes, folder).errno == errno.EISDIR
        assert _error(check_regular, folder).errno == errno.EISDIR
        assert _error(read_bytes, folder + "/missing").errno == errno.ENOENT
        # Not cut at the NUL (MicroPython's stat would look at "a").
        exc = _error(read_bytes, folder + "/a\0b")
        assert exc.errno == errno.EINVAL and "NUL" in exc.args[1]
        assert _error(LocalFiles().identity, folder + "/a\0b").errno == errno.EINVAL
    finally:
        _remove(folder)


def test_a_fifo_is_refused_where_the_port_can_make_one():
    if not hasattr(os, "mkfifo"):   # MicroPython
        return
    folder = _folder()
    try:
        os.mkfifo(folder + "/fifo")
        exc = _error(read_bytes, folder + "/fifo")
        assert exc.errno == errno.EINVAL and "FIFO" in exc.args[1]
    finally:
        _remove(folder)


def test_a_file_larger_than_any_config_is_refused_unread():
    folder = _folder()
    try:
        path = folder + "/big"
        with open(path, "wb") as f:     # sparse: nothing of it is written or read
            f.seek(MAX_FILE_BYTES)
            f.write(b"x")
        assert "larger than" in _error(read_bytes, path).args[1]
    finally:
        _remove(folder)


def test_a_data_file_of_any_size_is_opened_but_never_a_directory():
    folder = _folder()
    try:
        path = folder + "/big"
        with open(path, "wb") as f:     # sparse, larger than any config
            f.seek(MAX_FILE_BYTES)
            f.write(b"x")
        check_regular(path, None)
        f = open_regular(path)
        try:
            assert f.read(2) == b"\0\0"
        finally:
            f.close()
        assert _error(open_regular, folder).errno == errno.EISDIR
        assert _error(open_regular, folder + "/missing").errno == errno.ENOENT
    finally:
        _remove(folder)


def test_identity_tells_files_apart():
    folder = _folder()
    try:
        _write(folder + "/a", b"1")
        _write(folder + "/b", b"2")
        files = LocalFiles()
        assert files.identity(folder + "/a") == files.identity(folder + "//a")
        assert files.identity(folder + "/a") != files.identity(folder + "/b")
    finally:
        _remove(folder)


def test_glob_matches_in_name_order_where_the_port_has_glob():
    folder = _folder()
    try:
        for name in ("b.conf", "a.conf", "c.txt"):
            _write(folder + "/" + name, b"")
        try:
            found = LocalFiles().glob(folder + "/*.conf")
        except OSError as exc:
            assert sys.implementation.name == "micropython" and exc.errno == errno.EOPNOTSUPP
            return
        assert found == [folder + "/a.conf", folder + "/b.conf"]
        assert _error(LocalFiles().glob, folder + "\0/*.conf").errno == errno.EINVAL
    finally:
        _remove(folder)
