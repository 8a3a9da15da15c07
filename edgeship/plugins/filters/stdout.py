"""stdout filter: print every record passing by, unchanged (filter_stdout).

Each line is ``[N] TAG: [SEC.NSEC, {}, {"k"=>"v"}]`` (N counts from 0 in each batch, the
record in msgpack-c's print format), as Fluent Bit 5.1.1 prints it; one write per batch.
"""
import sys

from edgeship.core import events as ev
from edgeship.engine.plugin import Filter
from edgeship.codecs.formats import print_value


class StdoutFilter(Filter):
    name = "stdout"
    description = "Filter events to STDOUT"

    def filter(self, tag, events):
        text = "".join(["[%d] %s: [%s, {}, %s]\n" % (n, tag, ev.format_sec_nsec(time_ns),
                                                     print_value(record))
                        for n, (time_ns, record) in enumerate(events)])
        sys.stdout.flush()  # text already in sys.stdout's buffer goes out first
        sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
        sys.stdout.buffer.flush()
        return events


PLUGIN = StdoutFilter
