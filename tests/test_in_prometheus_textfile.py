"""prometheus_textfile input: a real edgeship child reading real files; the metrics the
stdout output prints are the lines Fluent Bit 5.1.1 printed for the same files."""
import pytest

from conftest import Printed, wait_for

pytestmark = pytest.mark.e2e

GOOD = ('# HELP node_textfile_x demo\n# TYPE node_textfile_x gauge\nnode_textfile_x{a="1"} 3.5\n'
        '# TYPE jobs_total counter\njobs_total 7\n')


def start(spawn, tmp_path, paths):
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[SERVICE]\n    Flush 0.1\n    Log_File %s\n"
                    "[INPUT]\n    Name prometheus_textfile\n    Path %s\n"
                    "    Scrape_Interval 0.3\n"
                    "[OUTPUT]\n    Name stdout\n    Match *\n" % (tmp_path / "log", paths))
    return Printed(spawn(["-c", str(conf)]))


def test_every_file_is_read_at_each_interval_and_bad_ones_are_logged(spawn, tmp_path):
    folder = tmp_path / "textfiles"
    folder.mkdir()
    (folder / "a.prom").write_text(GOOD)
    (folder / "b.prom").write_text("bad line {{\n")
    (folder / "empty.prom").write_text("")
    (folder / "dir.prom").mkdir()
    printed = start(spawn, tmp_path, "%s/*.prom, %s/none*.x" % (folder, folder))
    wait_for(lambda: len(printed.metrics()) >= 2)
    assert printed.metrics()[:2] == ["jobs_total = 7", 'node_textfile_x{a="1"} = 3.5']
    log = tmp_path / "log"
    wait_for(lambda: "error parsing file %s/b.prom" % folder in log.read_text()
             and "error reading glob pattern: %s/none*.x" % folder in log.read_text())
    (folder / "a.prom").write_text(GOOD.replace("3.5", "4.25"))
    wait_for(lambda: 'node_textfile_x{a="1"} = 4.25' in printed.metrics())


def test_path_is_required(tmp_path):
    from conftest import run_edgeship
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text("[INPUT]\n    Name prometheus_textfile\n[OUTPUT]\n    Name null\n"
                    "    Match *\n")
    proc = run_edgeship(["--dry-run", "-c", str(conf)])
    assert proc.returncode != 0 and "'path' is required" in proc.stderr
