#!/usr/bin/env bash
# Installs what vm-runner needs to build, run and be tested on Debian 12 or 13 (as root):
# libvirt and QEMU, firmware, image and ISO tools, Bun from the npm registry, and the
# project's npm dependencies. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "setup: $*" >&2; }

packages=(
  libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils
  ovmf ipxe-qemu swtpm swtpm-tools genisoimage xorriso libxml2-utils
  xz-utils bzip2 zstd zip unzip p7zip-full curl ca-certificates iproute2
  openssh-client sshpass netcat-openbsd iputils-ping dnsmasq-base
  docker.io docker-compose
  novnc chromium python3-sushy redfishtool
  mmdebstrap e2fsprogs dosfstools mtools fdisk uuid-runtime debian-archive-keyring
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null
fi

if ! command -v bun >/dev/null 2>&1; then
  log "installing Bun from the npm registry"
  npm install -g --allow-scripts=bun bun@1.4 >/dev/null 2>&1 || npm install -g bun@1.4 >/dev/null
fi
log "bun $(bun --version)"
bun install --frozen-lockfile >/dev/null
