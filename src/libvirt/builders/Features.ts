import type { DomainInputs } from "../DomainInputs.ts"
import type {
  DomainClock,
  DomainFeatureHyperV,
  DomainFeatureState,
  DomainFeatures,
  DomainPm
} from "../DomainModel.ts"

const on: DomainFeatureState = { state: "on" }

/**
 * Checks whether the host CPU virtualizes the APIC for guests. AMD AVIC appears as `avic` in
 * the `flags` of /proc/cpuinfo, and Intel APICv as `apicv` in its `vmx flags`.
 */
const hostHasApicVirtualization = (inputs: DomainInputs): boolean => {
  const { vendor, flags } = inputs.hostCpu
  if (vendor === "amd") return flags.has("avic")
  if (vendor === "intel") return flags.has("apicv")
  return false
}

/**
 * Checks whether the Hyper-V enlightenments apply: `HYPERV=1` on x86_64 under KVM. They are
 * implemented by KVM, and QEMU 7.2 under TCG refuses to start with them ("kernel doesn't
 * allow setting HyperV VP_INDEX").
 */
const hypervEnlightenments = (inputs: DomainInputs): boolean =>
  inputs.config.arch === "x86_64" && inputs.config.devices.hyperv && inputs.accel === "kvm"

/** Checks whether `HYPERV=1` applies at all, for the Windows settings that need no KVM. */
const windowsGuest = (inputs: DomainInputs): boolean =>
  inputs.config.arch === "x86_64" && inputs.config.devices.hyperv

/**
 * Builds the Hyper-V enlightenments for Windows guests (`HYPERV=1`), in custom mode so the
 * list is the same on every host. QEMU's dependency rules hold: `synic`, `tlbflush` and `ipi`
 * need `vpindex`, and `stimer` needs `synic` plus the `hypervclock` timer from `buildClock`.
 *
 * - `avic` lets the guest keep hardware APIC virtualization with SynIC on; QEMU's
 *   documentation warns it slows guests on hosts without APICv or AVIC, so it follows the host.
 * - `evmcs` is left off: it only speeds up nested Hyper-V on Intel hosts, and QEMU refuses to
 *   start when kvm_intel runs without `nested=1`, which /proc/cpuinfo does not show.
 */
export const buildHyperV = (inputs: DomainInputs): DomainFeatureHyperV => ({
  mode: "custom",
  relaxed: on,
  vapic: on,
  spinlocks: { state: "on", retries: 8191 },
  vpindex: on,
  runtime: on,
  synic: on,
  stimer: on,
  reset: on,
  frequencies: on,
  tlbflush: on,
  ipi: on,
  avic: hostHasApicVirtualization(inputs) ? on : undefined
})

/**
 * Builds `<features>`. x86_64 gets ACPI and the local APIC. libvirt's `pae` is not written:
 * every x86_64 CPU model has PAE and libvirt's QEMU driver passes nothing for it. aarch64
 * gets ACPI (AAVMF boots with it) and, under TCG, GICv3, because QEMU's `virt` machine
 * defaults to GICv2, which stops at 8 vCPUs. Under KVM libvirt picks what the host supports.
 */
export const buildFeatures = (inputs: DomainInputs): DomainFeatures => {
  const x86 = inputs.config.arch === "x86_64"
  return {
    acpi: true,
    apic: x86,
    hyperv: hypervEnlightenments(inputs) ? buildHyperV(inputs) : undefined,
    gic: !x86 && inputs.accel === "tcg" ? { version: "3" } : undefined,
    smm: inputs.firmware?.secureBoot === true ? on : undefined
  }
}

/**
 * Builds `<clock>`. Windows keeps the hardware clock in local time, so `HYPERV=1` selects
 * `localtime`, and under KVM adds `hypervclock` (QEMU's `hv-time`), which `stimer` requires.
 */
export const buildClock = (inputs: DomainInputs): DomainClock => {
  if (!windowsGuest(inputs)) return { offset: "utc", timers: [] }
  const timers: DomainClock["timers"] = hypervEnlightenments(inputs)
    ? [{ name: "hypervclock", present: "yes" }]
    : []
  return { offset: "localtime", timers }
}

/**
 * Builds `<pm>` for `HYPERV=1`: no S3 or S4, so an idle Windows guest keeps answering the
 * guest agent and remote logins instead of suspending itself. libvirt turns this into a
 * property of the machine's own power management device (ICH9-LPC on q35, PIIX4_PM on pc),
 * so it is valid on both machine types.
 */
export const buildPm = (inputs: DomainInputs): DomainPm | undefined =>
  windowsGuest(inputs)
    ? { suspendToMem: { enabled: "no" }, suspendToDisk: { enabled: "no" } }
    : undefined
