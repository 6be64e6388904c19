import type { DomainInputs } from "../DomainInputs.ts"
import type { DomainCpu } from "../DomainModel.ts"

/** `CPU_MODEL` values that mean "the host's CPU" rather than a QEMU model name. */
const hostModels = new Set(["host", "host-passthrough"])

/**
 * Builds `<cpu>` from `CPU_MODEL` and the accelerator.
 *
 * - Under KVM, `host` and `host-passthrough` pass the host CPU through unchanged, and
 *   `host-model` makes libvirt pick the closest named model plus the host's extra features.
 * - Under TCG there is no host CPU to pass through, so those three become `maximum`
 *   (QEMU's `-cpu max`, accepted by libvirt 7.1 and later): every feature TCG emulates. On
 *   QEMU 7.2 that is at least x86-64-v2, which RHEL 9 and its rebuilds require and which the
 *   old default `qemu64` lacks, so such guests would not boot on `qemu64`.
 * - `max` and `maximum` select `maximum` under either accelerator.
 * - Any other value is a QEMU model name (`Skylake-Client`, `cortex-a72`). With
 *   `fallback='allow'` libvirt substitutes a close model when the emulator lacks that one.
 */
export const buildCpu = (inputs: DomainInputs): DomainCpu => {
  const model = inputs.config.devices.cpuModel
  const kvm = inputs.accel === "kvm"
  if (model === "max" || model === "maximum") return { mode: "maximum" }
  if (hostModels.has(model)) return { mode: kvm ? "host-passthrough" : "maximum" }
  if (model === "host-model") return { mode: kvm ? "host-model" : "maximum" }
  return { mode: "custom", match: "exact", model: { fallback: "allow", value: model } }
}
