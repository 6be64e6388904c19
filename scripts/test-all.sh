#!/usr/bin/env bash
# Sets up this machine and runs every test: unit tests, then the end-to-end suite, which boots
# the test guest through the compiled binary, real libvirtd and real QEMU. Prints one summary
# line at the end, "N passed, N failed", and exits non-zero when anything failed.
#
#   bash scripts/test-all.sh            everything
#   bash scripts/test-all.sh --unit     unit tests only (no libvirtd, QEMU or guest needed)
set -uo pipefail
cd "$(dirname "$0")/.."

unit_only=0
[ "${1:-}" = "--unit" ] && unit_only=1
results=.tmp/test-results
rm -rf "$results"
mkdir -p "$results"
started=$(date +%s)
log() { echo "test-all [$(( $(date +%s) - started ))s]: $*" >&2; }

bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
status=0

log "unit tests"
bun test --reporter=junit --reporter-outfile="$results/unit.xml" || status=1

if [ "$unit_only" = 0 ]; then
  log "building dist/vm-runner"
  bun run build >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
  bash scripts/start-libvirt.sh || { echo "0 passed, 1 failed"; exit 1; }
  log "test guest image"
  VM_RUNNER_TEST_IMAGE=$(bash test/guest/ensure-image.sh) || { echo "0 passed, 1 failed"; exit 1; }
  export VM_RUNNER_TEST_IMAGE
  log "end-to-end tests (each boots a real guest under TCG; several minutes each)"
  # One file at a time and one guest at a time: a 2-core machine cannot boot two in time.
  for file in test/e2e/*.test.ts; do
    name=$(basename "$file" .test.ts)
    log "e2e: $name"
    bun test "./$file" --timeout 1800000 --reporter=junit \
      --reporter-outfile="$results/e2e-$name.xml" || status=1
  done
fi

log "done"
# Sum the JUnit files; a file that crashed before writing its report counts as one failure.
bun run scripts/summarize-junit.ts "$results" "$status"
