"""Copy the MicroPython agent and the edgeship core modules it imports onto a board.

    python tools/flash.py --port /dev/ttyACM0 [--config my-config.json] [--mpy]

The module list is the import closure of firmware/*.py within edgeship.core, found by reading
their imports, so the board gets exactly what the agent runs and nothing else. ``--mpy``
compiles them with mpy-cross first (smaller and faster to import on the board). Uses mpremote
(``pip install mpremote``); ``resume`` avoids a soft reset, so a REPL behind a pty works too.
"""
import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
FIRMWARE_FILES = ("main.py", "agent.py", "sensors.py")


def core_closure(sources):
    """Paths (relative to ROOT) of the edgeship.core modules ``sources`` need, transitively."""
    needed = {"edgeship/__init__.py", "edgeship/core/__init__.py"}
    todo = list(sources)
    while todo:
        with open(todo.pop()) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edgeship"):
                names = [node.module] + [node.module + "." + a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("edgeship")]
            for name in names:
                rel = name.replace(".", "/") + ".py"
                if rel not in needed and os.path.exists(os.path.join(ROOT, rel)):
                    needed.add(rel)
                    todo.append(os.path.join(ROOT, rel))
    return sorted(needed)


def stage(config, mpy):
    """A folder laid out as the board's filesystem will be."""
    out = tempfile.mkdtemp(prefix="edgeship-flash-")
    sources = [os.path.join(FIRMWARE, f) for f in FIRMWARE_FILES]
    for rel in core_closure(sources):
        dest = os.path.join(out, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if mpy and not rel.endswith("__init__.py"):
            subprocess.run([_tool("mpy-cross"), "-o", dest[:-3] + ".mpy",
                            os.path.join(ROOT, rel)], check=True)
        else:
            shutil.copy(os.path.join(ROOT, rel), dest)
    for name in FIRMWARE_FILES:
        if mpy and name != "main.py":
            subprocess.run([_tool("mpy-cross"), "-o", os.path.join(out, name[:-3] + ".mpy"),
                            os.path.join(FIRMWARE, name)], check=True)
        else:
            shutil.copy(os.path.join(FIRMWARE, name), out)
    shutil.copy(config, os.path.join(out, "config.json"))
    return out


def _tool(name):
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.exists(here) else name


def flash(port, staged):
    """One mpremote session: make the folders, then copy every file."""
    args = [_tool("mpremote"), "connect", port, "resume"]
    for folder in ("edgeship", "edgeship/core"):
        args += ["+", "exec", "import os\ntry:\n os.mkdir(%r)\nexcept OSError:\n pass" % folder]
    for base, _, files in os.walk(staged):
        for name in sorted(files):
            path = os.path.join(base, name)
            args += ["+", "fs", "cp", path, ":" + os.path.relpath(path, staged)]
    subprocess.run(args, check=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", required=True, help="serial device of the board")
    ap.add_argument("--config", default=os.path.join(FIRMWARE, "config.json"))
    ap.add_argument("--mpy", action="store_true", help="compile to .mpy with mpy-cross")
    args = ap.parse_args(argv)
    staged = stage(args.config, args.mpy)
    try:
        flash(args.port, staged)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    print("flashed %s" % args.port)


if __name__ == "__main__":
    main()
