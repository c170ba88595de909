#!/usr/bin/env bash
# Test setup for the `podman`-marked tests (called by scripts/test.sh; never by the app):
#   - installs podman, runc and debootstrap when missing;
#   - writes the two engine settings these CI machines need to /etc/containers/containers.conf
#     (crun fails here on hybrid cgroups, and the default raised ulimits need CAP_SYS_RESOURCE);
#   - builds the local agent base image from Debian packages, because no container registry is reachable;
#   - readies the machine for the rootless test (tests/podman/test_rootless.py), which runs the host as a normal
#     user it creates: newuidmap (uidmap), slirp4netns (rootless networking in Podman 4), setfacl (acl) to let that
#     user reach this checkout's Python, and /dev/net/tun usable by users as udev leaves it on a normal system.
#     The user reads /etc/containers/containers.conf below as well, so runc and the ulimits apply to it too.
# Users never run this: the app uses their Podman as it is and a registry base image by default.
set -euo pipefail

BASE_IMAGE="${NANOCLAW_TEST_BASE_IMAGE:-localhost/nanoclaw-base:bookworm}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v newuidmap >/dev/null 2>&1 || need+=(uidmap)
command -v slirp4netns >/dev/null 2>&1 || need+=(slirp4netns)
command -v setfacl >/dev/null 2>&1 || need+=(acl)
if [ "${#need[@]}" -gt 0 ]; then
  echo "==> installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

conf=/etc/containers/containers.conf
if ! grep -q 'nanoclaw-test-setup' "$conf" 2>/dev/null; then
  echo "==> writing $conf (runc, lower ulimits)"
  $SUDO mkdir -p /etc/containers
  $SUDO tee "$conf" >/dev/null <<'CONF'
# nanoclaw-test-setup: engine settings this CI machine needs (see docs in scripts/setup_podman.sh)
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
CONF
fi

# Without udev (containers, VMs like this CI's) the tun device stays root-only; slirp4netns needs it as the user.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  echo "==> making /dev/net/tun usable by users (as udev does)"
  $SUDO chmod 666 /dev/net/tun
fi

if ! $SUDO podman image exists "$BASE_IMAGE"; then
  echo "==> building the local base image $BASE_IMAGE with debootstrap (about a minute)"
  rootfs="$(mktemp -d)"
  trap '$SUDO rm -rf "$rootfs"' EXIT
  $SUDO debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" \
    >/dev/null
  $SUDO tar -C "$rootfs" -c . | $SUDO podman import -q - "$BASE_IMAGE" >/dev/null
fi
echo "==> podman ready: $(podman --version), base image $BASE_IMAGE"
