# Sourced by tools/container_test.sh and tools/arm64_test.sh: Debian root filesystems built
# with debootstrap from Debian's packages, cached outside the repository and reused, and a
# way to run commands in one as an isolated process.
#
#   ensure_rootfs SUITE ARCH [PACKAGE...]  prints the cached rootfs (built on first use)
#   private_mounts "$@"                     re-runs the calling script in its own mount
#                                           namespace, so its mounts vanish with it
#   overlay_rootfs CACHED WORKDIR           a throwaway writable copy of CACHED (overlayfs,
#                                           the cache stays as built); prints its path
#   in_rootfs ROOT COMMAND...               COMMAND inside ROOT, as root, host network
#
# in_rootfs is what a container runtime does, minus the network namespace (the setup steps
# download from the package registries): its own mount and PID namespaces
# (unshare --mount --pid --fork; a /proc of the new PID namespace), /dev bound, a fresh /tmp,
# then chroot. podman's crun is refused setrlimit on the machines this was written on, so no
# runtime is used.

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

private_mounts() {
  if [ -z "${EDGESHIP_PRIVATE_MOUNTS:-}" ]; then
    export EDGESHIP_PRIVATE_MOUNTS=1
    exec unshare --mount --propagation private -- bash "$0" "$@"
  fi
}

overlay_rootfs() {
  local cached="$1" work="$2"
  mkdir -p "$work/upper" "$work/overlay-work" "$work/root"
  mount -t overlay overlay \
    -o "lowerdir=$cached,upperdir=$work/upper,workdir=$work/overlay-work" "$work/root"
  cp /etc/resolv.conf "$work/root/etc/resolv.conf"
  # The host's CA bundle, for pip in the setup steps (a proxy between this machine and the
  # registries may sign with a CA only the host trusts); the rootfs's own bundle is untouched.
  cp /etc/ssl/certs/ca-certificates.crt "$work/root/etc/ssl/host-ca-certificates.crt"
  echo "$work/root"
}

in_rootfs() {
  local root="$1"; shift
  local ca=/etc/ssl/host-ca-certificates.crt
  [ -f "$root$ca" ] || ca=/etc/ssl/certs/ca-certificates.crt
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      LANG=C.UTF-8 PIP_CERT="$ca" PIP_DISABLE_PIP_VERSION_CHECK=1 \
    unshare --mount --pid --fork --kill-child -- /bin/sh -c '
    root="$1"; shift
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs tmpfs "$root/tmp"
    exec chroot "$root" "$@"' in_rootfs "$root" "$@"
}
