"""stdout filter: print every record passing by, unchanged (filter_stdout).

Each line is ``[N] TAG: [SEC.NSEC, {}, {"k"=>"v"}]`` (N counts from 0 in each batch), as
Fluent Bit 5.1.1 prints it; one write per batch.
"""
import sys

from edgeship.core import events as ev
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters._msgpack_print import object_print


class StdoutFilter(Filter):
    name = "stdout"
    description = "Filter events to STDOUT"

    def filter(self, tag, events):
        lines = ["[%d] %s: [%s, {}, %s]\n" % (n, tag, ev.format_sec_nsec(time_ns),
                                              object_print(record))
                 for n, (time_ns, record) in enumerate(events)]
        sys.stdout.write("".join(lines))
        sys.stdout.flush()
        return events


PLUGIN = StdoutFilter
