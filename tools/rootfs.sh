# Sourced by tools/container_test.sh and tools/arm64_test.sh: Debian root filesystems built
# with debootstrap from Debian's packages, cached outside the repository and reused.
#
#   ensure_rootfs SUITE ARCH [PACKAGE...]   -> prints the rootfs path
#   in_rootfs ROOTFS COMMAND...              -> COMMAND inside it, as an isolated process
#
# in_rootfs is what a container runtime does for the image, minus the network namespace:
# a private mount namespace and PID namespace (unshare --mount --pid --fork; /proc of the new
# namespace mounted inside), then chroot. podman's crun is refused setrlimit on the machines
# this was written on, so no runtime is used.

ROOTFS_CACHE="${EDGESHIP_ROOTFS_CACHE:-/var/cache/edgeship-rootfs}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

ensure_rootfs() {
  local suite="$1" arch="$2"; shift 2
  local root="$ROOTFS_CACHE/$suite-$arch"
  local wanted="${*:-}"
  local include="ca-certificates,python3,python3-venv${wanted:+,${wanted// /,}}"
  # A rootfs is complete once its stamp (the package list it was made with) is written.
  if [ -f "$root/.edgeship-rootfs" ] && [ "$(cat "$root/.edgeship-rootfs")" = "$include" ]; then
    echo "$root"; return 0
  fi
  rm -rf "$root"; mkdir -p "$ROOTFS_CACHE"
  echo "building $suite/$arch rootfs in $root (debootstrap, a few minutes; cached afterwards)" >&2
  debootstrap --variant=minbase --arch="$arch" --include="$include" "$suite" "$root" \
    "$DEBIAN_MIRROR" >"$root.log" 2>&1 || { echo "debootstrap failed: see $root.log" >&2; return 1; }
  echo "$include" > "$root/.edgeship-rootfs"
  echo "$root"
}

in_rootfs() {
  local root="$1"; shift
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  unshare --mount --pid --fork --kill-child -- /bin/sh -c '
    root="$1"; shift
    mount --make-rprivate /
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs tmpfs "$root/tmp"
    mount -t tmpfs tmpfs "$root/dev/shm" 2>/dev/null || true
    exec chroot "$root" "$@"' in_rootfs "$root" "$@"
}
