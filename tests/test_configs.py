"""Every example config in configs/ loads and validates (edgeship --dry-run), and the
quick-start from the README's first command produces its records."""
import glob
import json
import os

import pytest

from conftest import ROOT, run_edgeship

MAIN_CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, "configs", "*", "*.conf"))
                      if "[INPUT]" in open(p).read())


@pytest.mark.parametrize("path", MAIN_CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_example_config_validates(path):
    proc = run_edgeship(["--dry-run", "-c", path], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "configuration test is successful" in proc.stderr


@pytest.mark.parametrize("args", [["--example", "quickstart"],
                                  ["-c", "configs/quickstart/fluent-bit.conf"]])
def test_quickstart_runs_as_the_readme_says(args):
    proc = run_edgeship(args, cwd=ROOT, timeout=30)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["msg"] for r in records] == ["boot complete", "reading", "wifi rssi low",
                                           "mqtt publish failed"]  # debug line grepped out
    assert all(r["device"] == "pi-quickstart" for r in records)
    assert records[0]["date"] == 1795420800.12  # the parsed time, not the time of reading
