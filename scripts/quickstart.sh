#!/usr/bin/env bash
# The main job on a machine without internet access: installs what vm-runner needs, builds
# the binary and a Debian 12 test guest from Debian's package archive, boots the guest with
# vm-runner (KVM when it works, TCG otherwise) and runs commands in it with guest-exec.
# Run as root on Debian 12 or 13. The guest keeps running when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."

name=quickstart
mkdir -p .tmp
# Checked first, so that a second run does not rebuild dist/vm-runner under the running VM.
if [ -s .tmp/quickstart.pid ] && kill -0 "$(cat .tmp/quickstart.pid)" 2>/dev/null; then
  echo "quickstart: already running (pid $(cat .tmp/quickstart.pid)); stop it with" \
    "kill -TERM $(cat .tmp/quickstart.pid)" >&2
  exit 1
fi

bash scripts/setup.sh
bash scripts/start-libvirt.sh
echo "quickstart: building dist/vm-runner" >&2
bun run --silent build >/dev/null
echo "quickstart: building or reusing the test guest image (about 90 s the first time)" >&2
image=$(bash test/guest/ensure-image.sh)

password="${GUEST_PASSWORD:-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')}"
ssh_port="${SSH_PORT:-2222}"
echo "quickstart: booting $image as $name (log: .tmp/quickstart.log)" >&2
BOOT_FROM="$image" GUEST_NAME=$name PERSIST=0 MEMORY=1024 CPUS=2 NO_CONSOLE=1 \
  GUEST_PASSWORD="$password" SSH_PORT="$ssh_port" \
  setsid dist/vm-runner >.tmp/quickstart.log 2>&1 &
echo $! >.tmp/quickstart.pid
# When a later step fails, the ERR trap prints how to stop the VM that is already booting.
trap 'echo "quickstart: failed; the VM may still run: see .tmp/quickstart.log, stop it with kill -TERM $(cat .tmp/quickstart.pid)" >&2' ERR

echo "quickstart: waiting for the guest agent (20 s with KVM, 1 to 2 minutes under TCG)" >&2
dist/vm-runner guest-exec --wait=600 --domain $name uname -a
dist/vm-runner guest-exec --domain $name "grep PRETTY_NAME /etc/os-release"
status=0
dist/vm-runner guest-exec --domain $name "exit 42" || status=$?
echo "quickstart: 'exit 42' in the guest returned $status" >&2

cat >&2 <<MSG

The VM "$name" is running (vm-runner pid $(cat .tmp/quickstart.pid), log .tmp/quickstart.log).
  Run a command in it:  dist/vm-runner guest-exec --domain $name "df -h /"
  Log in over SSH:      ssh -p $ssh_port user@127.0.0.1   (password: $password)
  Stop it cleanly:      kill -TERM $(cat .tmp/quickstart.pid)
MSG
