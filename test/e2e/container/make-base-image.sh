#!/bin/bash
# make-base-image.sh [TAG] - make a local stand-in for Debian's debian:trixie-slim image.
#
# The container tests run where no registry is reachable, so the Dockerfile's base image is
# built from Debian's archive with mmdebstrap and imported under the official tag. An image
# that already has the tag (pulled, or made earlier) is left alone.
#
# The stand-in is a minbase system with the path filters of Debian's slim images
# (documentation, manual pages and translations are not unpacked), so the vm-runner image built
# on it has about the size it has on the official base. Takes about 15 to 70 s.
set -euo pipefail

tag=${1:-debian:trixie-slim}
docker=${DOCKER:-docker}

if "$docker" image inspect "$tag" >/dev/null 2>&1; then
  echo "make-base-image: $tag exists; keeping it" >&2
  exit 0
fi
command -v mmdebstrap >/dev/null || {
  echo "make-base-image: mmdebstrap not found; install it with apt-get install mmdebstrap" >&2
  exit 1
}

echo "make-base-image: building $tag with mmdebstrap" >&2
mmdebstrap --variant=minbase --quiet \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/groff/*' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  trixie - | "$docker" import - "$tag" >/dev/null
echo "make-base-image: $tag ready" >&2
