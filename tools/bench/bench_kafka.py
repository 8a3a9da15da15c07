"""kafka output benchmark: tail + json -> kafka (Format json) into the tests' stand-in broker
(tests/kafka_standin.py, a thread of this process counting the records of each batch), from
the sender's start until the broker holds every record; every chunk confirmed by delivery
reports, as edgeship does. CPU per event is the sender's (librdkafka's threads included).

    python tools/bench/bench_kafka.py [--lines 200000] [--fluent-bit PATH]

Prints markdown rows for the README's performance table (Fluent Bit's only with a binary
built with kafka).
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
from kafka_standin import KafkaStandin  # noqa: E402
from tools.bench.common import (EDGESHIP, HEADER, comparison_parser, fluent_bit,  # noqa: E402
                                measure_delivery, movie_log, print_ratio, workdir)


def measure(label, lines, binary, log, parsers):
    broker = KafkaStandin(keep=False)
    head = [binary, "-q"] if binary else EDGESHIP
    args = head + ["-f", "0.2", "-R", parsers, "-i", "tail", "-p", "path=" + log,
                   "-p", "read_from_head=on", "-p", "parser=json", "-t", "bench",
                   "-o", "kafka", "-m", "*", "-p", "brokers=" + broker.address,
                   "-p", "topics=bench", "-p", "retry_limit=no_limits"]
    try:
        return measure_delivery(label, lines, args, lambda: broker.accepted)
    finally:
        broker.close()


def main():
    parser = comparison_parser(__doc__)
    parser.set_defaults(lines=200000)
    args = parser.parse_args()
    binary = fluent_bit(args.fluent_bit) if args.fluent_bit else None  # PATH's may lack kafka
    with workdir() as tmp:
        log, parsers = movie_log(tmp, args.lines)
        print(HEADER)
        ours = measure("edgeship: tail + json -> kafka json", args.lines, None, log, parsers)
        if binary is not None:
            theirs = measure("Fluent Bit: tail + json -> kafka json", args.lines, binary, log,
                             parsers)
            print_ratio(ours, theirs, "kafka")


if __name__ == "__main__":
    main()
