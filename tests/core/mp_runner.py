"""Runs every ``test_*`` function of the core test modules under MicroPython.

micropython-lib's unittest exits 0 on failure, so this small runner is used instead: it
prints one line per failure and exits 1 when any test failed.
Usage: MICROPYPATH=<repo>:<repo>/tests/core micropython mp_runner.py test_config test_schema
"""
import sys


def main(modules):
    failed = 0
    ran = 0
    for name in modules:
        mod = __import__(name)
        for attr in sorted(dir(mod)):
            if not attr.startswith("test_"):
                continue
            fn = getattr(mod, attr)
            ran += 1
            try:
                fn()
            except Exception as exc:  # report and go on: one line per failure
                failed += 1
                print("FAIL %s.%s: %s %s" % (name, attr, type(exc).__name__, exc))
    print("%d passed, %d failed" % (ran - failed, failed))
    return 1 if failed or not ran else 0


sys.exit(main(sys.argv[1:]))
