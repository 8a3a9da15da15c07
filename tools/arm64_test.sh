#!/usr/bin/env bash
# "Raspberry Pi-class", tested rather than claimed: the end-to-end subset of the test suite in
# arm64 Debian root filesystems under qemu-user-static: Bookworm (Python 3.11, Raspberry Pi OS
# 12) and Bullseye (Python 3.9, Raspberry Pi OS 11).
#
#   sudo bash tools/arm64_test.sh [bookworm|bullseye ...]     (default: both)
#
# The end-to-end subset: the test files that run real edgeship processes against real
# sockets, files, a Mosquitto from the rootfs's own Debian packages and SIGKILLs (listed in
# E2E_TESTS below); not the MicroPython firmware tests (the MicroPython unix port is an x86-64
# wheel) nor the packaging checks that need groff and systemd-analyze.
#
# Needs root, debootstrap, qemu-user-static and binfmt-support (.ci/run does not install them:
# this runs outside CI). aarch64 binaries run through the kernel's binfmt_misc, which also
# covers the processes the tests start; if the kernel refuses to register it the script says
# what refused and runs the interpreter explicitly (qemu-aarch64-static in the chroot), which
# covers a single process only, so the suite cannot run that way.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR="$PWD"
. tools/rootfs.sh
private_mounts "$@"

E2E_TESTS="tests/test_configs.py tests/test_cli.py tests/test_stdin.py tests/test_tail.py
  tests/test_outputs_file.py tests/test_spool.py tests/test_durability.py
  tests/test_forward_e2e.py tests/test_mqtt_output.py tests/test_mqtt_client.py
  tests/test_installed.py"
SUITES=("${@:-bookworm bullseye}")
read -r -a SUITES <<<"${SUITES[*]}"
host_python="$ROOT_DIR/.venv/bin/python"; [ -x "$host_python" ] || host_python=python3

# ---------------------------------------------------------------- binfmt_misc
binfmt=/proc/sys/fs/binfmt_misc
interpreter=()
if ! mountpoint -q "$binfmt"; then
  mount -t binfmt_misc binfmt_misc "$binfmt" 2>"/tmp/edgeship-binfmt.err" || true
fi
if mountpoint -q "$binfmt" && { [ -e "$binfmt/qemu-aarch64" ] ||
     update-binfmts --enable qemu-aarch64 2>>"/tmp/edgeship-binfmt.err"; } &&
   grep -q '^enabled' "$binfmt/qemu-aarch64" 2>/dev/null; then
  echo "binfmt_misc: qemu-aarch64 registered ($(grep -E '^(interpreter|flags)' "$binfmt/qemu-aarch64" | tr '\n' ' '))"
else
  echo "binfmt_misc refused: $(cat /tmp/edgeship-binfmt.err 2>/dev/null)"
  echo "running qemu-aarch64-static explicitly; the suite's child processes cannot run so"
  interpreter=(/usr/bin/qemu-aarch64-static)
fi

# The wheel, as in the container test: built on this machine (it is pure Python).
work=$(mktemp -d /tmp/edgeship-arm64.XXXXXX)
trap 'for r in "$work"/*/root; do umount -l "$r" 2>/dev/null || true; done; rm -rf "$work"' EXIT
mkdir -p "$work/src"
cp -r pyproject.toml README.md LICENSE edgeship "$work/src/"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
"$host_python" -m pip wheel --no-deps --quiet --wheel-dir "$work/dist" "$work/src" >/dev/null
wheel=$(basename "$work"/dist/edgeship-*.whl)

status=0
results=()
for suite in "${SUITES[@]}"; do
  started=$(date +%s)
  cached=$(ensure_rootfs "$suite" arm64 mosquitto mosquitto-clients openssl)
  root=$(overlay_rootfs "$cached" "$work/$suite")
  [ ${#interpreter[@]} -eq 0 ] || cp /usr/bin/qemu-aarch64-static "$root/usr/bin/"
  # The repository's tests and tools beside the installed wheel (the tests run
  # `python -m edgeship`, which finds the wheel's code).
  mkdir -p "$root/opt/edgeship-src" "$root/opt/dist"
  cp -r tests tools pyproject.toml README.md LICENSE Dockerfile .dockerignore \
    "$root/opt/edgeship-src/"
  cp -a configs "$root/opt/edgeship-src/configs"          # the link to edgeship/examples
  cp -r "$work/src/edgeship" "$root/opt/edgeship-src/"
  cp "$work/dist/$wheel" "$root/opt/dist/"
  # The reference vectors and conformance cases some tests compare bytes with (../shared).
  mkdir -p "$root/opt/shared"
  cp -rL "$ROOT_DIR/../shared/conformance" "$ROOT_DIR/../shared/reference" "$root/opt/shared/"
  arch=$(in_rootfs "$root" "${interpreter[@]}" /usr/bin/uname -m)
  pyver=$(in_rootfs "$root" "${interpreter[@]}" /usr/bin/python3 -V)
  echo "== $suite: $arch, $pyver"
  # As the README's Raspberry Pi install: a venv, a current pip, then edgeship (+ test tools).
  in_rootfs "$root" "${interpreter[@]}" /bin/sh -c "
    python3 -m venv /opt/venv &&
    /opt/venv/bin/pip install --quiet --upgrade pip &&
    /opt/venv/bin/pip install --quiet '/opt/dist/$wheel[all]' pytest hypothesis fluent-logger"
  installed=$(( $(date +%s) - started ))
  log="${EDGESHIP_TEST_LOGS:-/tmp}/edgeship-arm64-$suite.log"
  code=0
  in_rootfs "$root" "${interpreter[@]}" /bin/sh -c "cd /opt/edgeship-src &&
    /opt/venv/bin/python -m pytest -q -p no:cacheprovider $(echo $E2E_TESTS)" \
    >"$log" 2>&1 || code=$?
  tail -15 "$log"; echo "(whole log: $log)"
  summary=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error).* =+$' "$log" | tail -1 |
            tr -d '=' | sed 's/^ *//;s/ *$//')
  elapsed=$(( $(date +%s) - started ))
  results+=("$(date -u +%Y-%m-%d) | $suite arm64 ($arch), $pyver | ${summary:-no summary (exit $code)} | install ${installed}s, total ${elapsed}s")
  [ "$code" -eq 0 ] || status=1
  umount -l "$root"
done

echo
echo "arm64 end-to-end subset ($(echo $E2E_TESTS | wc -w) test files), $wheel:"
printf '  %s\n' "${results[@]}"
exit $status
