"""YAML configs (Fluent Bit 5.1.1's fluent-bit.yaml): the reader's YAML half, its errors
with file:line, and YAML twins of the conformance corpus giving the same outputs."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import SHARED, run_edgeship

from edgeship.core.config import ClassicReader, Variables, translate_key
from edgeship.core.errors import ConfigError
from edgeship.core.files import LocalFiles
from edgeship.engine.loader import Loader


def read(tmp_path, files, main="fluent-bit.yaml", environ=None):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    loader = Loader(environ=environ or {})
    return loader, loader.read(str(tmp_path / main))


def error_of(tmp_path, files, main="fluent-bit.yaml"):
    with pytest.raises(ConfigError) as info:
        read(tmp_path, files, main)
    return info.value


def test_sections_entries_lines_and_variables(tmp_path):
    loader, sections = read(tmp_path, {
        "fluent-bit.yaml": (
            "env:\n  SITE: plant-7\n"
            "includes:\n  - more/out.yaml\n"
            "service:\n  flush: 0.5\n  logLevel: debug\n"
            "parsers:\n  - name: kv\n    format: logfmt\n"
            "pipeline:\n  inputs:\n    - Name: dummy\n      tag: ${SITE}.x\n"
            "      flushOnStartup: on\n"
            "  filters:\n    - name: grep\n      match: '*'\n      regex:\n"
            "        - a ^1\n        - b ^2\n"),
        "more/out.yaml": "pipeline:\n  outputs:\n    - name: null\n      match: '*'\n",
    })
    shape = [(s.kind, s.line, [(e.key, e.value, e.line) for e in s.entries]) for s in sections]
    out = str(tmp_path / "more" / "out.yaml")
    assert shape == [
        ("OUTPUT", 3, [("name", "null", 3), ("match", "*", 4)]),
        ("SERVICE", 5, [("flush", "0.5", 6), ("log_level", "debug", 7)]),
        ("PARSER", 9, [("name", "kv", 9), ("format", "logfmt", 10)]),
        ("INPUT", 13, [("name", "dummy", 13), ("tag", "plant-7.x", 14),
                       ("flush_on_startup", "on", 15)]),
        ("FILTER", 17, [("name", "grep", 17), ("match", "*", 18), ("regex", "a ^1", 20),
                        ("regex", "b ^2", 21)]),
    ]
    assert sections[0].file == out
    engine = loader.build(sections)
    assert list(engine.parsers) == ["kv"] and len(engine.filters) == 1


def test_yaml_parsers_file_from_a_classic_config(tmp_path):
    (tmp_path / "parsers.yaml").write_text(
        "parsers:\n  - name: kv\n    format: logfmt\nmultiline_parsers:\n  - name: ml\n"
        "    type: regex\n    rules:\n      - state: start_state\n        regex: '/^\\S/'\n"
        "        next_state: cont\n      - state: cont\n        regex: '/^\\s/'\n"
        "        next_state: cont\n")
    loader, sections = read(tmp_path, {"fluent-bit.conf": (
        "[SERVICE]\n    Parsers_File parsers.yaml\n[INPUT]\n    Name dummy\n")},
        main="fluent-bit.conf")
    engine = loader.build(sections)
    assert list(engine.parsers) == ["kv"] and list(engine.multiline_parsers) == ["ml"]
    ml = engine.multiline_parsers["ml"].stream()
    assert ml.feed(1, "first") == [] and ml.feed(2, "  more") == []
    assert ml.flush() == [(1, {"log": "first\n  more\n"})]    # Fluent Bit's trailing \n
    (tmp_path / "parsers.yaml").write_text("pipeline:\n  inputs:\n    - name: dummy\n")
    with pytest.raises(ConfigError, match="input sections are not allowed"):
        loader.build(Loader(environ={}).read(str(tmp_path / "fluent-bit.conf")))


def test_key_translation_as_fluent_bit():
    assert [translate_key(k) for k in ("logLevel", "readFromHead", "tls.verifyHostname",
                                       "kubeURL", "Read_From_Head", "mem_Buf", "Name")] == \
        ["log_level", "read_from_head", "tls.verify_hostname", "kube_u_r_l", "Read_From_Head",
         "mem_Buf", "Name"]


def test_env_list_forms_and_file_uri(tmp_path):
    (tmp_path / "secret.txt").write_text("s3cret\n")
    _, sections = read(tmp_path, {"fluent-bit.yaml": (
        "env:\n  - name: A\n    value: one\n  - name: B\n    uri: file://%s\n  - C: three\n"
        "pipeline:\n  inputs:\n    - name: dummy\n      tag: ${A}.${B}.${C}.${D:-four}\n"
        % (tmp_path / "secret.txt"))})
    assert sections[0].get("tag") == "one.s3cret.three.four"


# (files, error words, file, line)
ERRORS = [
    ({"fluent-bit.yaml": "service:\n\tflush: 1\n"}, "invalid YAML", "fluent-bit.yaml", 2),
    ({"fluent-bit.yaml": "service:\n  flush 1\n  grace: 2\n"}, "invalid YAML",
     "fluent-bit.yaml", 3),
    ({"fluent-bit.yaml": "pipeline:\n  sources:\n    - name: dummy\n"},
     "pipeline component 'sources' is not valid", "fluent-bit.yaml", 2),
    ({"fluent-bit.yaml": "pipeline:\n  inputs:\n    - tag: x\n"},
     "missing the 'name' property", "fluent-bit.yaml", 3),
    ({"fluent-bit.yaml": "service:\n  flush: 1\nincludes:\n  - b.yaml\n",
      "b.yaml": "service:\n  grace: 1\n"}, "duplicated definition of 'service'", "b.yaml", 1),
    ({"fluent-bit.yaml": "includes:\n  - nothere.yaml\n"}, "nothere.yaml",
     "fluent-bit.yaml", 2),
    ({"fluent-bit.yaml": "includes:\n  - b.yaml\n  - b.yaml\n", "b.yaml": "env:\n  A: 1\n"},
     "included more than once", "fluent-bit.yaml", 3),
    ({"fluent-bit.yaml": "env:\n  A:\n    B: 1\n"}, "nested maps are not allowed",
     "fluent-bit.yaml", 2),
    ({"fluent-bit.yaml": "pipeline:\n  filters:\n    - name: grep\n      regex:\n"
                         "        a: b\n"}, "a map is not a value", "fluent-bit.yaml", 4),
    ({"fluent-bit.yaml": "pipeline:\n  inputs:\n    - name: dummy\n      processors:\n"
                         "        logs:\n          - name: content_modifier\n"},
     "processors are not supported", "fluent-bit.yaml", 4),
    ({"fluent-bit.yaml": "pipeline:\n  inputs:\n    - name: dummy\n      rate:\n"
                         "        - a: 1\n"}, "expects text values", "fluent-bit.yaml", 5),
    ({"fluent-bit.yaml": "- a\n- b\n"}, "mapping of sections", "fluent-bit.yaml", 1),
]


def test_errors_name_file_and_line(tmp_path):
    for files, words, file, line in ERRORS:
        shutil.rmtree(tmp_path)
        tmp_path.mkdir()
        err = error_of(tmp_path, files)
        assert words in err.message, (words, str(err))
        assert (os.path.basename(err.file), err.line) == (file, line), (words, str(err))


def test_plugin_errors_from_the_shared_loader(tmp_path):
    conf = tmp_path / "fluent-bit.yaml"
    conf.write_text("pipeline:\n  inputs:\n    - name: dummy\n      bogus_key: 1\n")
    proc = run_edgeship(["--dry-run", "-c", str(conf)])
    assert proc.returncode == 1
    assert "fluent-bit.yaml:4: key 'bogus_key': dummy: unknown configuration property" \
        in proc.stderr
    conf.write_text("custom_info:\n  a: 1\npipeline:\n  inputs:\n    - name: dummy\n")
    proc = run_edgeship(["--dry-run", "-c", str(conf)])
    assert proc.returncode == 0 and "unknown section 'custom_info' ignored" in proc.stderr


# ---------------------------------------------------------------------- conformance twins
CONFORMANCE = os.path.join(SHARED, "conformance")


def yaml_twin(classic_path):
    """The YAML config equivalent to a classic one: its sections read by edgeship's reader
    (includes inlined, variables expanded), every entry a line in config order (a key
    written twice in a YAML map is set twice, as a repeated classic key), values as JSON
    strings (a subset of YAML's double-quoted scalars)."""
    reader = ClassicReader(LocalFiles(), Variables(dict(os.environ)))
    service, pipeline = [], {"INPUT": [], "FILTER": [], "OUTPUT": []}
    for section in reader.read_main(classic_path):
        lines = ["%s: %s" % (entry.key, json.dumps(entry.value)) for entry in section.entries]
        if section.kind == "SERVICE":
            service += ["  " + line for line in lines]
        else:
            pipeline[section.kind].append(
                "    - " + "\n      ".join(lines) if lines else "    - {}")
    text = "service:\n" + "\n".join(service) + "\n" if service else ""
    text += "pipeline:\n"
    for kind, key in (("INPUT", "inputs"), ("FILTER", "filters"), ("OUTPUT", "outputs")):
        if pipeline[kind]:
            text += "  %s:\n%s\n" % (key, "\n".join(pipeline[kind]))
    return text


def test_conformance_cases_as_yaml_twins_give_the_same_outputs(tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    made = []
    for name in sorted(os.listdir(os.path.join(CONFORMANCE, "cases"))):
        source = os.path.join(CONFORMANCE, "cases", name)
        with open(os.path.join(source, "case.json")) as f:
            case = json.load(f)
        if case.get("expect_failure") or case.get("config") or case.get("env"):
            continue        # errors are classic-specific; env cases rely on @SET/@INCLUDE
        target = cases / name
        shutil.copytree(source, target)
        (target / "fluent-bit.yaml").write_text(yaml_twin(str(target / "fluent-bit.conf")))
        (target / "fluent-bit.conf").unlink()     # the run must use the YAML twin
        case["config"] = "fluent-bit.yaml"
        (target / "case.json").write_text(json.dumps(case))
        made.append(name)
    assert len(made) >= 20, made
    proc = subprocess.run([sys.executable, os.path.join(CONFORMANCE, "run.py"), "--cases",
                           str(cases), "--cmd", "%s -m edgeship" % sys.executable],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "%d passed, 0 failed" % len(made)
