#!/bin/bash
# build-image.sh - build the Debian 12 (bookworm) cloud-style qcow2 that vm-runner's tests boot.
#
#   test/guest/build-image.sh OUT.qcow2
#
# Run as root on Debian 12 amd64. It uses Debian's package archive only and installs the host
# tools it needs. Tests should not call it directly: test/guest/ensure-image.sh caches its result.
#
# The disk (2 GiB virtual, GPT) boots under legacy BIOS and under UEFI, with or without Secure
# Boot:
#   p1    1 MiB  BIOS boot partition: GRUB's i386-pc core.img, loaded by the MBR boot code
#   p2  126 MiB  EFI system partition: Microsoft-signed shim -> Debian-signed GRUB
#   p3     rest  ext4 root; last, so that cloud-init's growpart can grow it into a bigger disk
# Guest contents: linux-image-amd64, systemd, cloud-init (NoCloud and None only),
# qemu-guest-agent (started early), openssh-server, sudo, and the few tools the tests run in
# the guest (iproute2, procps, netcat-openbsd, e2fsprogs).
#
# The image is assembled from plain files (mkfs.ext4 -d, mtools, sfdisk on a file), so the build
# needs no loop devices and mounts nothing of its own. Only mmdebstrap mounts /proc, /sys and /dev
# in its chroot while it installs packages, and it unmounts them afterwards.
#
# Environment (none of these changes what goes into the image, only how it is built):
#   MIRROR           Debian archive, default http://deb.debian.org/debian
#   SECURITY_MIRROR  default http://deb.debian.org/debian-security
#   KEEP_WORK=1      keep the work directory (root tree, raw disk) for inspection
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUT.qcow2" >&2
  exit 2
fi
OUT=$1
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
KEEP_WORK=${KEEP_WORK:-0}
SUITE=bookworm
# Virtual size. A test that needs more space gives its overlay a bigger size; growpart and
# resize2fs (cloud-init) then grow the root file system on first boot.
SIZE_MB=2048
ESP_MB=126
ROOT_START_MB=128 # 1 MiB GPT/alignment + 1 MiB BIOS boot + 126 MiB ESP

T0=$(date +%s)
log() { echo "[build-image $(( $(date +%s) - T0 ))s] $*" >&2; }
die() { echo "build-image: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must be run as root (it uses mmdebstrap --mode=root and apt-get)"
ARCH=$(dpkg --print-architecture)
[ "$ARCH" = amd64 ] || die "unsupported host architecture $ARCH: run it on an amd64 Debian 12 host"

# ------------------------------------------------------------------------------- host tools
# Install only what is missing, so that a prepared machine does not touch the network here.
HOST_TOOLS=(mmdebstrap qemu-utils e2fsprogs dosfstools mtools fdisk uuid-runtime
  debian-archive-keyring)
missing=()
for p in "${HOST_TOOLS[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] \
    || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing host tools: ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
fi

# ------------------------------------------------------------------------------- work dir
OUT_DIR=$(dirname "$OUT")
mkdir -p "$OUT_DIR"
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/vm-runner-guest.XXXXXX")
# mktemp makes the directory 0700; apt's unprivileged _apt user must be able to reach the
# package download directory inside it.
chmod 0755 "$WORK"
TMP_OUT=""
cleanup() {
  local rc=$? m
  if [ -n "$TMP_OUT" ]; then rm -f "$TMP_OUT"; fi
  # If mmdebstrap was killed, /proc, /sys or /dev may still be mounted inside the chroot.
  # Unmount them first (deepest first), and never let rm cross into another file system:
  # deleting through a leftover /dev mount would remove the host's device nodes.
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk -v w="$WORK/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  if [ "$KEEP_WORK" = 1 ]; then
    echo "build-image: work directory kept: $WORK" >&2
  else
    rm -rf --one-file-system "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
# Turn signals into a normal exit so that the EXIT trap cleans up.
trap 'exit 130' INT
trap 'exit 143' TERM HUP

ROOT=$WORK/root
ROOT_UUID=$(uuidgen)
# A FAT volume id is 32 bits; fstab spells it XXXX-XXXX in upper case.
ESP_ID=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n' | tr a-f A-F)
ESP_UUID=${ESP_ID:0:4}-${ESP_ID:4:4}

# ------------------------------------------------------------------------------- root tree
GUEST_PACKAGES=(
  # The generic kernel, not the smaller cloud flavour: the tests need 9p (shares), AHCI (SATA
  # disks) and the emulated NIC models (e1000, rtl8139), which the cloud kernel leaves out.
  linux-image-amd64
  # init, device manager, and the D-Bus/logind pieces hostnamectl and SSH sessions rely on
  systemd-sysv udev dbus libpam-systemd
  # first-boot configuration; cloud-guest-utils has growpart
  cloud-init cloud-guest-utils
  qemu-guest-agent openssh-server sudo
  # cloud-init on Debian 12 writes its network config for ifupdown ('eni' renderer)
  ifupdown isc-dhcp-client netbase
  # tools the tests run in the guest
  iproute2 procps netcat-openbsd e2fsprogs
  # initramfs-tools compresses with zstd when present and otherwise falls back to gzip, which
  # unpacks more slowly
  zstd
  # boot loaders: i386-pc modules for BIOS, signed shim and GRUB for UEFI and Secure Boot
  grub-pc-bin grub-efi-amd64-signed shim-signed
)
# Documentation, manual pages and translations are dead weight in a test guest.
NODOC_RULES=(
  'path-exclude=/usr/share/man/*'
  'path-exclude=/usr/share/info/*'
  'path-exclude=/usr/share/doc/*'
  'path-include=/usr/share/doc/*/copyright'
  'path-exclude=/usr/share/locale/*'
  'path-include=/usr/share/locale/locale.alias'
  'path-exclude=/usr/share/lintian/*'
)
dpkg_opts=()
for r in "${NODOC_RULES[@]}"; do dpkg_opts+=("--dpkgopt=$r"); done

log "mmdebstrap $SUITE (downloads and installs packages; the long step)"
# The essential hooks run before the kernel package is configured, i.e. before its initramfs
# is generated: the fstab lets initramfs-tools' fsck hook see the root file system, and
# RESUME=none stops it from searching for a swap device to resume from.
# The merged-usr hook dir (shipped with mmdebstrap) lays out merged /usr the way debootstrap does
# and installs usr-is-merged. Without it, apt satisfies init-system-helpers' dependency with the
# usrmerge package, which pulls the full perl (about 50 MiB installed) into the guest.
# shellcheck disable=SC2016 # the hooks' $1 is expanded by the hook's shell, not here
mmdebstrap --mode=root --variant=minbase --components=main \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --include="$(IFS=,; echo "${GUEST_PACKAGES[*]}")" \
  --aptopt='APT::Install-Recommends "false"' \
  "${dpkg_opts[@]}" \
  --essential-hook="printf '%s\n' \
    'UUID=$ROOT_UUID / ext4 errors=remount-ro 0 1' \
    'UUID=$ESP_UUID /boot/efi vfat umask=0077,nofail 0 0' > \"\$1/etc/fstab\"" \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" &&
    echo RESUME=none > "$1/etc/initramfs-tools/conf.d/resume"' \
  "$SUITE" "$ROOT" \
  "deb $MIRROR $SUITE main" \
  "deb $MIRROR $SUITE-updates main" \
  "deb $SECURITY_MIRROR $SUITE-security main" >&2

log "configuring the guest"
KVER=$(basename "$(readlink -f "$ROOT/vmlinuz")")
KVER=${KVER#vmlinuz-}
if [ -z "$KVER" ] || [ ! -e "$ROOT/boot/vmlinuz-$KVER" ] \
  || [ ! -e "$ROOT/boot/initrd.img-$KVER" ]; then
  die "kernel or initramfs missing in $ROOT/boot: check the mmdebstrap output above"
fi

echo debian > "$ROOT/etc/hostname"
cat > "$ROOT/etc/hosts" <<'EOF'
127.0.0.1	localhost
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
cat > "$ROOT/etc/network/interfaces" <<'EOF'
# cloud-init writes the interfaces it configures to /etc/network/interfaces.d/50-cloud-init
auto lo
iface lo inet loopback
source /etc/network/interfaces.d/*
EOF
mkdir -p "$ROOT/boot/efi"
# C.UTF-8 is built into glibc. Naming it as the system locale leaves cloud-init's locale module
# nothing to do. Without a system locale, it would run locale-gen for en_US.UTF-8 at boot.
echo 'LANG=C.UTF-8' > "$ROOT/etc/default/locale"

# The tests seed the guest through NoCloud (a disk labelled 'cidata'). Probing for other clouds
# costs boot time and could send requests to metadata addresses. 'None' lets cloud-init finish
# when no seed is attached.
cat > "$ROOT/etc/cloud/cloud.cfg.d/90-vm-runner.cfg" <<'EOF'
datasource_list: [ NoCloud, None ]
# put the hostname into /etc/hosts, otherwise sudo warns that it cannot resolve it
manage_etc_hosts: true
EOF

# udev starts qemu-guest-agent once its virtio port appears. With systemd's default dependencies
# the agent also waits for sysinit.target, which on Debian includes cloud-init's first stage, so
# under TCG it answers only after about 60 s. It needs just a writable root and the journal, so
# this drop-in starts it as soon as those exist (about 20-30 s under TCG).
mkdir -p "$ROOT/etc/systemd/system/qemu-guest-agent.service.d"
cat > "$ROOT/etc/systemd/system/qemu-guest-agent.service.d/early.conf" <<'EOF'
[Unit]
DefaultDependencies=no
After=systemd-remount-fs.service systemd-journald.socket
Conflicts=shutdown.target
Before=shutdown.target
EOF
# e2scrub_reap looks for leftover e2scrub LVM snapshots at boot: there are none here, and under
# TCG it costs CPU while the guest boots.
chroot "$ROOT" systemctl disable e2scrub_reap.service >/dev/null 2>&1 || true

# Only used if a kernel upgrade inside the guest runs update-grub: keep the serial console.
cat > "$ROOT/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
EOF

# Every guest must get its own identity on first boot: no SSH host keys (cloud-init makes them),
# an empty machine-id (systemd makes one) and no cloud-init state from the build.
rm -f "$ROOT"/etc/ssh/ssh_host_*
: > "$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
rm -rf "$ROOT"/var/lib/cloud/* "$ROOT"/tmp/* "$ROOT"/var/tmp/* "$ROOT"/var/cache/apt/*.bin
find "$ROOT/var/log" -type f -exec truncate -s 0 {} +
# mmdebstrap leaves its dpkg options in 99mmdebstrap. The no-doc rules are kept under a clearer
# name so that packages installed later in the guest stay small too.
rm -f "$ROOT/etc/dpkg/dpkg.cfg.d/99mmdebstrap"
printf '%s\n' "${NODOC_RULES[@]}" > "$ROOT/etc/dpkg/dpkg.cfg.d/01-nodoc"

# ------------------------------------------------------------------------------- GRUB
# One grub.cfg on the root file system serves both boot paths. Its kernel and initrd are the
# /vmlinuz and /initrd.img symlinks, which Debian moves along on kernel upgrades.
CMDLINE="root=UUID=$ROOT_UUID ro console=tty0 console=ttyS0,115200n8"
mkdir -p "$ROOT/boot/grub"
cat > "$ROOT/boot/grub/grub.cfg" <<EOF
# Written by vm-runner's test/guest/build-image.sh; update-grub in the guest may replace it.
set default=0
set timeout=0
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
insmod part_gpt
insmod ext2
search --no-floppy --fs-uuid --set=root $ROOT_UUID
menuentry 'Debian GNU/Linux 12 (vm-runner test guest)' {
	linux /vmlinuz $CMDLINE
	initrd /initrd.img
}
EOF
# BIOS GRUB loads its modules at run time from /boot/grub/i386-pc (the signed EFI GRUB has
# them built in). Only the modules and their lists are needed there.
cp -a "$ROOT/usr/lib/grub/i386-pc" "$ROOT/boot/grub/"
rm -f "$ROOT"/boot/grub/i386-pc/*.image "$ROOT"/boot/grub/i386-pc/*.img
# The BIOS core image embeds just enough to find the root file system by UUID; everything else
# comes from /boot/grub. grub-install would do this too, but it wants a real block device.
cat > "$WORK/core.cfg" <<EOF
search.fs_uuid $ROOT_UUID root
set prefix=(\$root)/boot/grub
EOF
cp "$WORK/core.cfg" "$ROOT/tmp/core.cfg"
chroot "$ROOT" grub-mkimage -O i386-pc -o /tmp/core.img -c /tmp/core.cfg -p /boot/grub \
  biosdisk part_gpt ext2 search_fs_uuid
mv "$ROOT/tmp/core.img" "$WORK/core.img"
rm -f "$ROOT/tmp/core.cfg"
cp "$ROOT/usr/lib/grub/i386-pc/boot.img" "$WORK/boot.img"

# ------------------------------------------------------------------------------- ESP
log "building the EFI system partition"
ESP=$WORK/esp.img
truncate -s "${ESP_MB}M" "$ESP"
mkfs.vfat -F 32 -n EFI -i "$ESP_ID" "$ESP" >/dev/null
# Debian's signed GRUB reads grub.cfg from the directory it was started from; this one only
# hands over to the grub.cfg on the root file system.
cat > "$WORK/esp-grub.cfg" <<EOF
search.fs_uuid $ROOT_UUID root
set prefix=(\$root)'/boot/grub'
configfile \$prefix/grub.cfg
EOF
export MTOOLS_SKIP_CHECK=1
mmd -i "$ESP" ::/EFI ::/EFI/BOOT ::/EFI/debian
# Firmware with empty NVRAM (a fresh OVMF_VARS copy) starts EFI/BOOT/BOOTX64.EFI. EFI/debian is
# where an installed Debian keeps shim, and shim loads grubx64.efi from its own directory.
# fbx64.efi is left out on purpose, because the fallback loader would write NVRAM boot entries
# and reset the machine once.
for dir in BOOT debian; do
  if [ "$dir" = BOOT ]; then shim=BOOTX64.EFI; else shim=shimx64.efi; fi
  mcopy -i "$ESP" "$ROOT/usr/lib/shim/shimx64.efi.signed" "::/EFI/$dir/$shim"
  mcopy -i "$ESP" "$ROOT/usr/lib/shim/mmx64.efi.signed" "::/EFI/$dir/mmx64.efi"
  mcopy -i "$ESP" "$ROOT/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" \
    "::/EFI/$dir/grubx64.efi"
  mcopy -i "$ESP" "$WORK/esp-grub.cfg" "::/EFI/$dir/grub.cfg"
done

# ------------------------------------------------------------------------------- root fs
log "creating the ext4 root file system"
SECTORS=$(( SIZE_MB * 2048 ))
ROOT_START=$(( ROOT_START_MB * 2048 ))
# End on a 1 MiB boundary and leave the last 33 sectors to the backup GPT.
ROOT_END=$(( (SECTORS - 34) / 2048 * 2048 ))
ROOT_SECTORS=$(( ROOT_END - ROOT_START ))
chmod 0755 "$ROOT"
# mkfs.ext4 -d copies the tree (owners, modes, hard links, xattrs such as file capabilities)
# straight into the new file system: no loop device, no mount.
mkfs.ext4 -q -F -L root -U "$ROOT_UUID" -d "$ROOT" -E root_owner=0:0 \
  "$WORK/root.ext4" "$(( ROOT_SECTORS / 2 ))k"
e2fsck -fn "$WORK/root.ext4" >/dev/null 2>&1 || die "e2fsck found errors in the new root fs"

# ------------------------------------------------------------------------------- disk
log "assembling the GPT disk"
DISK=$WORK/disk.raw
truncate -s "${SIZE_MB}M" "$DISK"
sfdisk -q "$DISK" >&2 <<EOF
label: gpt
start=2048, size=2048, type=21686148-6453-6F6E-7449-6E6F744E6565, name="bios"
start=4096, size=$(( ESP_MB * 2048 )), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"
start=$ROOT_START, size=$ROOT_SECTORS, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root"
EOF
dd if="$ESP" of="$DISK" bs=1M seek=2 conv=notrunc,sparse status=none
dd if="$WORK/root.ext4" of="$DISK" bs=1M seek="$ROOT_START_MB" conv=notrunc,sparse status=none

# BIOS boot is written by hand because grub-bios-setup requires a real disk device. These are
# the bytes grub-bios-setup would write for a GPT disk with a BIOS boot partition.
#   boot.img is the MBR code (first 440 bytes, so sfdisk's protective partition table stays).
#   It gets the LBA of core.img's first sector at 0x5c, boot drive 0xff ("the drive the BIOS
#   booted from") at 0x64, and two NOPs at 0x66 in place of the jump that handles floppies.
#   core.img's first sector (diskboot) ends with a block list at 0x1f4 that locates the rest of
#   core.img: u64 start LBA, u16 sector count, u16 load segment 0x820.
# Writes VALUE as NBYTES little-endian bytes at OFFSET of FILE.
put_le() { # FILE OFFSET NBYTES VALUE
  local file=$1 off=$2 n=$3 v=$4 bytes="" i
  for ((i = 0; i < n; i++)); do bytes+=$(printf '\\x%02x' $(( (v >> (8 * i)) & 255 ))); done
  printf '%b' "$bytes" | dd of="$file" bs=1 seek="$off" conv=notrunc status=none
}
CORE_LBA=2048 # start of the BIOS boot partition
CORE_SECTORS=$(( ($(stat -c %s "$WORK/core.img") + 511) / 512 ))
[ "$CORE_SECTORS" -le 2048 ] || die "core.img does not fit the 1 MiB BIOS boot partition"
put_le "$WORK/core.img" $((0x1f4)) 8 $((CORE_LBA + 1))
put_le "$WORK/core.img" $((0x1fc)) 2 $((CORE_SECTORS - 1))
put_le "$WORK/core.img" $((0x1fe)) 2 $((0x820))
dd if="$WORK/core.img" of="$DISK" bs=512 seek="$CORE_LBA" conv=notrunc status=none
put_le "$WORK/boot.img" $((0x5c)) 8 "$CORE_LBA"
put_le "$WORK/boot.img" $((0x64)) 1 $((0xff))
printf '\x90\x90' | dd of="$WORK/boot.img" bs=1 seek=$((0x66)) conv=notrunc status=none
dd if="$WORK/boot.img" of="$DISK" bs=440 count=1 conv=notrunc status=none

# ------------------------------------------------------------------------------- qcow2
log "converting to compressed qcow2"
# Write next to OUT and rename, so that a reader or a concurrent build never opens a partial
# image.
TMP_OUT=$(mktemp "$OUT_DIR/.$(basename "$OUT").XXXXXX")
qemu-img convert -f raw -O qcow2 -c -o compat=1.1 "$DISK" "$TMP_OUT"
chmod 0644 "$TMP_OUT"
mv -f "$TMP_OUT" "$OUT"
TMP_OUT=""
log "done: $OUT ($(du -h "$OUT" | cut -f1), virtual $SIZE_MB MiB) kernel $KVER"
