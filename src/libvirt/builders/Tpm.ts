import type { DomainInputs } from "../DomainInputs.ts"
import type { DomainTpm } from "../DomainModel.ts"

/**
 * Builds the TPM 2.0 emulated by swtpm, which libvirt starts and keeps under
 * /var/lib/libvirt/swtpm/<uuid>; the stable domain UUID finds the same state every run.
 * x86_64 uses the CRB interface that Windows 11 expects. The Arm `virt` machine has no CRB
 * device, so aarch64 uses TIS (libvirt attaches QEMU's `tpm-tis-device` there).
 * With `PERSIST=1` the state also survives `virsh undefine` (`persistent_state`).
 */
export const buildTpms = (inputs: DomainInputs): Array<DomainTpm> => {
  if (!inputs.config.boot.tpm) return []
  return [
    {
      model: inputs.config.arch === "x86_64" ? "tpm-crb" : "tpm-tis",
      backend: {
        type: "emulator",
        version: "2.0",
        persistentState: inputs.config.runtime.persist ? "yes" : undefined
      }
    }
  ]
}
