"""Reading cgroup files for the container inputs (docker, podman_metrics): the v1/v2 check
and the number readers, as the kernel writes the files. Each reader takes the text of one
file (read whole with ``Host.read``) and gives None where Fluent Bit's reading fails.
"""
import os

UINT64_MAX = (1 << 64) - 1
V2_MARK = "cgroup.controllers"


def is_v2(root):
    """True when the cgroup file system at ``root`` is the v2 (unified) hierarchy: its root
    has cgroup.controllers."""
    return os.path.exists(os.path.join(root, V2_MARK))


def _digits(word):
    """The unsigned number ``word`` starts with, else None (C's ``%lu`` scan, no sign)."""
    end = 0
    while end < len(word) and "0" <= word[end] <= "9":
        end += 1
    return min(int(word[:end]), UINT64_MAX) if end else None


def first_number(text):
    """The number a single-value file holds (memory.current, cpuacct.usage, the first PID of
    cgroup.procs), else None (``max``, an empty file)."""
    return _digits(text.lstrip())


def keyed_number(text, key):
    """The value of ``key`` in a ``key value`` file (cpu.stat, memory.stat), else None."""
    for line in text.splitlines():
        words = line.split()
        if len(words) > 1 and words[0] == key:
            return _digits(words[1])
    return None


IO_KEYS = ("rbytes", "wbytes", "rios", "wios")


def io_totals(text):
    """The v2 io.stat counters summed over its block devices: (rbytes, wbytes, rios, wios);
    zeros when nothing was read or written yet (an empty file)."""
    totals = dict.fromkeys(IO_KEYS, 0)
    for line in text.splitlines():
        for word in line.split()[1:]:
            key, equals, value = word.partition("=")
            if equals and key in totals:
                totals[key] += _digits(value) or 0
    return tuple(totals[key] for key in IO_KEYS)
