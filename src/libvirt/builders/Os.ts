import type { DomainInputs } from "../DomainInputs.ts"
import type { DomainOs } from "../DomainModel.ts"

/**
 * Builds `<os>`. With firmware files (UEFI on x86_64, always on aarch64) the loader is OVMF or
 * AAVMF as read-only pflash, and `nvram` is the VM's own variable store, which libvirt fills
 * from the template on first start. Without them (BOOT_MODE=legacy) QEMU boots SeaBIOS.
 * No `<boot dev>` element: every bootable device carries its own `<boot order>`.
 */
export const buildOs = (inputs: DomainInputs): DomainOs => {
  const { arch, boot } = inputs.config
  const firmware = inputs.firmware
  return {
    type: { arch, machine: boot.machine, value: "hvm" },
    loader:
      firmware === undefined
        ? undefined
        : {
            readonly: "yes",
            // The Secure Boot builds of OVMF refuse to run without SMM, which `buildFeatures`
            // turns on for the same firmware.
            secure: firmware.secureBoot ? "yes" : "no",
            type: "pflash",
            path: firmware.loader
          },
    nvram:
      firmware === undefined ? undefined : { template: firmware.varsTemplate, path: firmware.nvram }
  }
}
