"""Write N movie-log JSON lines (the benchmarks' records) to a file, for trying pipelines.

    python tools/generate_log.py OUT.log [N]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.bench.common import generate_lines  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    generate_lines(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 1000000)
