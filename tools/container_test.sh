#!/usr/bin/env bash
# The container image, tested without a Docker engine: what the Dockerfile does, done in a
# debootstrapped Debian bookworm rootfs (debian:bookworm-slim's release), then the image's
# command run as an isolated process the way a runtime runs it, and checked from outside.
#
#   sudo bash tools/container_test.sh          (root: debootstrap, namespaces, chroot)
#
# Steps, each checked:
#   build   the wheel from the files the Dockerfile copies; the build stage's
#           `python3 -m venv /opt/edgeship && pip install ...[EXTRAS]` in the rootfs
#   image   the final stage's RUN lines verbatim, its COPY of the default config
#   run     ENTRYPOINT + CMD as USER in WORKDIR with ENV only, as PID 1 of its own PID, mount
#           and network namespaces (unshare --mount --pid --net --fork, chroot)
#   checks  it runs as the USER; a forward record sent into its network namespace comes out
#           on its stdout; the spool is written in the VOLUME; /fluent-bit/bin/fluent-bit is
#           edgeship; HEALTHCHECK's command (when something listens on the health port; the
#           monitoring server may not be built yet, which is reported); SIGTERM ends it with
#           exit code 0.
# The rootfs is cached in /var/cache/edgeship-rootfs and used through an overlay, so each run
# starts from the same clean copy. Prints a summary line with the pass count and duration.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR="$PWD"
. tools/rootfs.sh
private_mounts "$@"

started=$(date +%s)
passed=0; failed=0; notes=()
check() {  # check NAME COMMAND...: one line per check
  if "${@:2}"; then passed=$((passed + 1)); echo "PASS  $1"
  else failed=$((failed + 1)); echo "FAIL  $1"; fi
}
host_python="$ROOT_DIR/.venv/bin/python"; [ -x "$host_python" ] || host_python=python3
field() { "$host_python" tools/dockerfile.py "$1"; }

work=$(mktemp -d /tmp/edgeship-container.XXXXXX)
child=""
cleanup() {
  [ -n "$child" ] && kill -KILL "$child" 2>/dev/null || true
  umount -l "$work/root" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------- build stage
cached=$(ensure_rootfs bookworm amd64)
root=$(overlay_rootfs "$cached" "$work")
mkdir -p "$work/src"
cp -r pyproject.toml README.md LICENSE edgeship "$work/src/"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
"$host_python" -m pip wheel --no-deps --quiet --wheel-dir "$work/dist" "$work/src" >/dev/null
wheel=$(basename "$work"/dist/edgeship-*.whl)
mkdir -p "$root/opt/dist" && cp "$work/dist/$wheel" "$root/opt/dist/"
extras=$(field extras)
in_rootfs "$root" /bin/sh -c "python3 -m venv /opt/edgeship && /opt/edgeship/bin/pip install \
  --quiet --no-cache-dir --disable-pip-version-check '/opt/dist/$wheel${extras:+[$extras]}'"
check "build: $wheel${extras:+[$extras]} installed in /opt/edgeship" \
  test -x "$root/opt/edgeship/bin/edgeship"

# ---------------------------------------------------------------- final stage
while IFS= read -r line; do
  in_rootfs "$root" /bin/sh -c "export DEBIAN_FRONTEND=noninteractive; $line" >/dev/null
done < <(field final-runs)
while read -r source destination; do
  mkdir -p "$root$(dirname "$destination")"; cp "$source" "$root$destination"
done < <(field final-copies)
user=$(field user); workdir=$(field workdir); volume=$(field volumes | head -1)
mapfile -t command < <("$host_python" -c 'import shlex,sys; print("\n".join(shlex.split(sys.stdin.read())))' <<<"$(field command)")
mapfile -t environment < <(field env)
check "image: /fluent-bit/etc/fluent-bit.conf in place" test -f "$root/fluent-bit/etc/fluent-bit.conf"

# ---------------------------------------------------------------- run, as a runtime would
uid=${user%%:*}; gid=${user#*:}
env_args=(env -i "PATH=/opt/edgeship/bin:/usr/local/bin:/usr/bin:/bin" "HOME=$workdir"
          "${environment[@]}")
unshare --mount --pid --net --fork --kill-child -- /bin/sh -c '
  root="$1"; user="$2"; workdir="$3"; shift 3
  ip link set lo up
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs tmpfs "$root/tmp"
  exec chroot --userspec="$user" "$root" /bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$workdir" "$@"
' container "$root" "$uid:$gid" "$workdir" "${env_args[@]}" "${command[@]}" \
  >"$work/stdout" 2>"$work/stderr" &
runtime=$!
for _ in $(seq 100); do
  child=$(cat /proc/$runtime/task/*/children 2>/dev/null | awk '{print $1}')
  [ -n "$child" ] && break; sleep 0.1
done
inside() { nsenter --target "$child" --net --mount --pid --root --wd -- "$@"; }
listening() {  # listening PORT: something accepts connections in the container
  inside /opt/edgeship/bin/python -c "import socket,sys
try: socket.create_connection(('127.0.0.1', $1), 1).close()
except OSError: sys.exit(1)" 2>/dev/null
}
forward_port=$(sed -n 's/.*Port *\${FORWARD_PORT:-\([0-9]*\)}.*/\1/p' "$root/fluent-bit/etc/fluent-bit.conf")
for _ in $(seq 150); do listening "$forward_port" && break; sleep 0.2; done

runs_as_user() {  # PID 1 of the namespace is edgeship, with the image's uid
  [ "$(inside cat /proc/1/comm)" = "edgeship" ] && grep -Eq "^Uid:\s+$uid\s" "/proc/$child/status"
}
check "run: edgeship is PID 1 of its namespaces, as uid $uid" runs_as_user
stamp="container-test-$(date +%s%N)"
inside /opt/edgeship/bin/python -c "
import msgpack, socket, time
s = socket.create_connection(('127.0.0.1', $forward_port), 5)
s.sendall(msgpack.packb(['from.host', int(time.time()), {'msg': '$stamp', 'n': 1}]))
s.close()"
got_record() { grep -q "\"msg\":\"$stamp\"" "$work/stdout"; }
for _ in $(seq 100); do got_record && break; sleep 0.1; done
check "record: a forward message came out on stdout" got_record
# (the spool's segments are deleted once delivered; its directories stay)
spool_in_volume() { find "$root$volume" -mindepth 1 -user "$uid" | grep -q .; }
check "volume: the spool is made in $volume by uid $uid" spool_in_volume
fluent_bit_is_edgeship() { inside /fluent-bit/bin/fluent-bit --version | grep -q '^edgeship v'; }
check "drop-in: /fluent-bit/bin/fluent-bit is edgeship" fluent_bit_is_edgeship

health_url=$(printf '%s\n' "${environment[@]}" | sed -n 's/^EDGESHIP_HEALTH_URL=//p')
health_port=$(echo "$health_url" | sed -n 's#.*://[^:/]*:\([0-9]*\)/.*#\1#p')
mapfile -t healthcheck < <("$host_python" -c 'import shlex,sys; print("\n".join(shlex.split(sys.stdin.read())))' <<<"$(field healthcheck)")
run_healthcheck() {
  nsenter --target "$child" --net --mount --pid --root --wd --setuid "$uid" --setgid "$gid" -- \
    "${env_args[@]}" "${healthcheck[@]}" >/dev/null 2>&1
}
if listening "$health_port"; then
  check "health: HEALTHCHECK passes ($health_url)" run_healthcheck
  health="checked"
else
  # Nothing serves the health port: the monitoring HTTP server is not in this build yet.
  unhealthy() { ! run_healthcheck; }
  check "health: HEALTHCHECK reports unhealthy while nothing listens on :$health_port" unhealthy
  health="not checked: nothing listens on :$health_port (no monitoring HTTP server yet)"
  notes+=("health endpoint $health")
fi

kill -TERM "$child"
code=0; wait "$runtime" || code=$?
child=""
check "stop: SIGTERM ends it with exit code 0 (got $code)" test "$code" -eq 0
if [ "$failed" -ne 0 ]; then
  echo "--- stderr of the container"; tail -20 "$work/stderr"
fi

elapsed=$(( $(date +%s) - started ))
echo
echo "container test $(date -u +%Y-%m-%dT%H:%MZ): $passed passed, $failed failed in ${elapsed}s" \
  "(Debian bookworm amd64 rootfs, $wheel${extras:+[$extras]}, $(in_rootfs "$root" python3 -V))"
for note in "${notes[@]+"${notes[@]}"}"; do echo "note: $note"; done
[ "$failed" -eq 0 ]
