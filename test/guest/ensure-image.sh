#!/bin/bash
# ensure-image.sh - print the path of the cached test guest image, building it when missing.
#
#   img=$(test/guest/ensure-image.sh)
#
# The only line on stdout is the image path; progress goes to stderr. The cache lives outside
# the repository, in ${VM_RUNNER_TEST_CACHE:-/var/cache/vm-runner-test}, so that a fresh clone
# (as CI makes) reuses an image built earlier on the same machine.
#
# The file name carries the first 16 hex digits of the sha256 of build-image.sh: editing the
# builder yields a new name and so a rebuild, while an unchanged builder costs one hash.
# Next to the image, IMAGE.sha256 contains the image's own sha256 (hex digest only, one line) for
# tests that serve the image together with a checksum.
#
# NOTE: the key covers the builder only, not the package versions in Debian's archive. Two
# machines with the same builder can therefore cache images with different package updates.
#
# Concurrent callers take a lock, so the image is built once; the others wait, then reuse it.
# Images of older builders are left in the cache; delete them by hand if space matters.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILDER=$HERE/build-image.sh
CACHE=${VM_RUNNER_TEST_CACHE:-/var/cache/vm-runner-test}

log() { echo "ensure-image: $*" >&2; }

[ -f "$BUILDER" ] || { log "missing $BUILDER"; exit 1; }
KEY=$(sha256sum "$BUILDER" | cut -c1-16)
IMG=$CACHE/debian-12-$KEY.qcow2
SUM=$IMG.sha256

# Both files are written under temporary names and renamed, the checksum after the image, so a
# present checksum file means a complete image: the common case needs no lock.
if [ -s "$IMG" ] && [ -s "$SUM" ]; then
  echo "$IMG"
  exit 0
fi

mkdir -p "$CACHE"
# One lock for the whole cache: it also keeps two builds of different builders (for instance
# two checkouts) from running at once on a 2-core machine.
exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then
  log "another build holds $CACHE/.build.lock; waiting"
  flock 9
fi

if [ ! -s "$IMG" ]; then
  log "building $IMG (about 90-100 s)"
  # The builder's own output goes to stderr: stdout is reserved for the path.
  bash "$BUILDER" "$IMG" >&2
fi
if [ ! -s "$SUM" ]; then
  log "writing $SUM"
  tmp=$(mktemp "$CACHE/.sha256.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  sha256sum "$IMG" | cut -d' ' -f1 > "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$SUM"
  trap - EXIT
fi

echo "$IMG"
