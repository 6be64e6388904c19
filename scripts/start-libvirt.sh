#!/usr/bin/env bash
# Starts virtlogd and libvirtd by hand when no libvirtd answers at qemu:///system (machines
# without systemd, such as CI). Leaves an already running daemon alone.
#
# It also makes libvirt run QEMU as root, as the container image does. With Debian's default
# (the libvirt-qemu user) on a host whose /dev/kvm is root-only, libvirt 9.0 probes QEMU as root,
# then finds KVM unusable for libvirt-qemu, declares its capability cache stale and probes
# again on every define, start and capabilities call: 10 to 30 s each.
set -euo pipefail
conf=/etc/libvirt/qemu.conf
marker="# vm-runner: run QEMU as root"
changed=0
if ! grep -qF "$marker" "$conf"; then
  printf '\n%s\nuser = "root"\ngroup = "root"\n' "$marker" >> "$conf"
  changed=1
fi
if virsh -c qemu:///system uri >/dev/null 2>&1; then
  if [ "$changed" = 1 ]; then
    echo "start-libvirt: $conf changed; restart libvirtd for it to apply" >&2
  fi
  exit 0
fi
for socket in /run/libvirt/virtlogd-sock /run/libvirt/libvirt-sock; do
  [ -S "$socket" ] && rm -f "$socket"
done
[ -S /run/libvirt/virtlogd-sock ] || virtlogd -d
libvirtd -d
for _ in $(seq 1 150); do
  virsh -c qemu:///system uri >/dev/null 2>&1 && exit 0
  sleep 0.2
done
echo "start-libvirt: libvirtd does not answer" >&2
exit 1
