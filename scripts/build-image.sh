#!/usr/bin/env bash
# build-image.sh - build vm-runner's container image from this checkout.
#
#   scripts/build-image.sh [--tag TAG] [--no-aarch64] [--ca-file PEM] [-- DOCKER-BUILD-ARGS...]
#
#   --tag TAG       image name (default vm-runner:latest)
#   --no-aarch64    leave out qemu-system-aarch64 and its firmware (x86_64 guests only)
#   --ca-file PEM   extra CA certificates (a PEM bundle) for a TLS-intercepting proxy between
#                   the build and the npm registry. On a host that trusts the proxy,
#                   /etc/ssl/certs/ca-certificates.crt works. The build gets the file as the
#                   secret "ca-certificates".
#
# It runs the same `docker build` a user runs, with BuildKit: `docker buildx build --load` when
# the buildx plugin is installed, else `docker build` with DOCKER_BUILDKIT=1, which works with
# Docker before 23 (its CLI carries the BuildKit client). DOCKER names the docker CLI to use.
# Prints the build time and the image size on stderr when done.
set -euo pipefail
cd "$(dirname "$0")/.."

docker=${DOCKER:-docker}
tag=vm-runner:latest
build_args=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit "$1"; }

while [ $# -gt 0 ]; do
  case $1 in
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --no-aarch64) build_args+=(--build-arg AARCH64=false); shift ;;
    --ca-file)
      ca_file=${2:?--ca-file needs a value}
      [ -r "$ca_file" ] || { echo "build-image: cannot read CA file $ca_file" >&2; exit 2; }
      build_args+=(--secret "id=ca-certificates,src=$ca_file")
      shift 2
      ;;
    -h | --help) usage 0 ;;
    --) shift; build_args+=("$@"); break ;;
    *) echo "build-image: unknown option $1" >&2; usage 2 ;;
  esac
done

if "$docker" buildx version >/dev/null 2>&1; then
  build=("$docker" buildx build --load)
else
  export DOCKER_BUILDKIT=1
  build=("$docker" build)
fi

started=$(date +%s)
echo "build-image: ${build[*]} --tag $tag ${build_args[*]} ." >&2
"${build[@]}" --tag "$tag" "${build_args[@]}" .
seconds=$(($(date +%s) - started))
bytes=$("$docker" image inspect --format '{{.Size}}' "$tag")
echo "build-image: built $tag in ${seconds} s; size $((bytes / 1000000)) MB ($bytes bytes)" >&2
