"""Read the repository's Dockerfile: its instructions, and what the image it builds runs.

No Docker engine runs where edgeship is tested, so the image is checked in two ways that need
none: tests/test_packaging.py checks the instructions (known ones, COPY sources that exist,
a non-root USER, the command and health check), and tools/container_test.sh runs what this
module reads from the final stage (USER, WORKDIR, ENV, ENTRYPOINT + CMD, HEALTHCHECK) in a
Debian rootfs. ``python3 tools/dockerfile.py FIELD`` prints one of them for the shell script.
"""
import json
import os
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(ROOT, "Dockerfile")
KNOWN = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
         "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


class Instruction:
    def __init__(self, name, args, line, stage):
        self.name = name        # upper case
        self.args = args        # the rest, continuations joined
        self.line = line        # where it starts (1-based)
        self.stage = stage      # index of its FROM

    def __repr__(self):
        return "%s:%d %s %s" % (os.path.basename(DOCKERFILE), self.line, self.name, self.args)


def instructions(path=DOCKERFILE):
    """Every instruction, in order. Comment lines (also inside a continuation) are dropped,
    a trailing backslash joins the next line."""
    found = []
    stage = -1
    pending, start = "", 0
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if line.lstrip().startswith("#") or (not line.strip() and not pending):
                continue
            if not pending:
                start = number
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            text = (pending + line).strip()
            pending = ""
            name, _, args = text.partition(" ")
            name = name.upper()
            if name == "FROM":
                stage += 1
            found.append(Instruction(name, args.strip(), start, stage))
    if pending:
        raise ValueError("%s ends inside a continued line" % path)
    return found


def final_stage(found):
    last = max(i.stage for i in found)
    return [i for i in found if i.stage == last]


def exec_form(args):
    """The argv of an exec-form (JSON array) instruction; ValueError for the shell form,
    which would run under /bin/sh -c."""
    argv = json.loads(args)
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise ValueError("not an exec-form array: %s" % args)
    return argv


def _last(found, name):
    matches = [i for i in found if i.name == name]
    return matches[-1] if matches else None


def command(found=None):
    """ENTRYPOINT + CMD of the image: what `docker run IMAGE` executes."""
    stage = final_stage(found or instructions())
    entry, cmd = _last(stage, "ENTRYPOINT"), _last(stage, "CMD")
    return (exec_form(entry.args) if entry else []) + (exec_form(cmd.args) if cmd else [])


def environment(found=None):
    """The final stage's ENV values (KEY=VALUE pairs, shell-quoted)."""
    env = {}
    for instr in final_stage(found or instructions()):
        if instr.name == "ENV":
            for word in shlex.split(instr.args):
                key, eq, value = word.partition("=")
                if not eq:
                    raise ValueError("%r: use ENV KEY=VALUE" % instr)
                env[key] = value
    return env


def healthcheck(found=None):
    """(options, argv) of the final stage's HEALTHCHECK ... CMD [...]."""
    instr = _last(final_stage(found or instructions()), "HEALTHCHECK")
    if instr is None:
        return None
    options, _, rest = instr.args.partition("CMD ")
    return options.split(), exec_form(rest)


def user(found=None):
    instr = _last(final_stage(found or instructions()), "USER")
    return instr.args if instr else "root"


def workdir(found=None):
    instr = _last(final_stage(found or instructions()), "WORKDIR")
    return instr.args if instr else "/"


def copied_sources(found=None):
    """(instruction, source) of every COPY/ADD from the build context (not --from)."""
    sources = []
    for instr in found or instructions():
        if instr.name not in ("COPY", "ADD"):
            continue
        words = shlex.split(instr.args)
        if any(w.startswith("--from=") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        sources += [(instr, source) for source in words[:-1]]
    return sources


def copied_to(destination, found=None):
    """The build-context file the final stage copies to ``destination``."""
    for instr, source in copied_sources(final_stage(found or instructions())):
        if shlex.split(instr.args)[-1] == destination:
            return source
    return None


if __name__ == "__main__":
    field = sys.argv[1] if len(sys.argv) > 1 else ""
    if field == "command":
        print(shlex.join(command()))
    elif field == "user":
        print(user())
    elif field == "workdir":
        print(workdir())
    elif field == "env":
        for key, value in environment().items():
            print("%s=%s" % (key, value))
    elif field == "healthcheck":
        print(shlex.join(healthcheck()[1]))
    elif field == "extras":
        args = [i.args for i in instructions() if i.name == "ARG" and i.stage == -1]
        print(dict(a.partition("=")[::2] for a in args).get("EXTRAS", ""))
    elif field == "final-runs":
        for instr in final_stage(instructions()):
            if instr.name == "RUN":
                print(instr.args)
    elif field == "final-copies":
        for instr, source in copied_sources(final_stage(instructions())):
            print(source, shlex.split(instr.args)[-1])
    elif field == "volumes":
        for instr in final_stage(instructions()):
            if instr.name == "VOLUME":
                print("\n".join(exec_form(instr.args)))
    else:
        sys.exit("usage: tools/dockerfile.py command|user|workdir|env|healthcheck|final-runs|"
                 "final-copies|volumes")
