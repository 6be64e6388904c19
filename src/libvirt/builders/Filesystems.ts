import type { FilesystemShare } from "../../domain/Config.ts"
import type { DomainInputs } from "../DomainInputs.ts"
import type { DomainFilesystem } from "../DomainModel.ts"

const filesystem = (inputs: DomainInputs, share: FilesystemShare): DomainFilesystem => {
  const virtiofs = share.driver === "virtiofs"
  return {
    type: "mount",
    // libvirt accepts only passthrough for virtiofs.
    accessmode: virtiofs ? "passthrough" : share.accessMode,
    driver: { type: virtiofs ? "virtiofs" : "path" },
    binary:
      virtiofs && inputs.virtiofsd !== undefined
        ? {
            path: inputs.virtiofsd,
            ...(inputs.virtiofsSandbox === "chroot" ? { sandbox: "chroot" as const } : {})
          }
        : undefined,
    source: { dir: share.source },
    target: { dir: share.tag },
    // NOTE: where libvirt cannot make a virtiofs share read-only, the host side stays
    // writable and only the guest's read-only mount protects it. Root in the guest can
    // remount it read-write.
    readonly: share.readonly && (!virtiofs || inputs.virtiofsReadonly)
  }
}

/**
 * Builds one `<filesystem>` per `FILESYSTEMn_*` share: virtiofs through the virtiofsd binary
 * the host provides, or 9p through QEMU's `local` backend (libvirt's `path` driver).
 * `buildMemory` adds the shared memory that virtiofs needs.
 */
export const buildFilesystems = (inputs: DomainInputs): Array<DomainFilesystem> =>
  inputs.config.filesystems.map((share) => filesystem(inputs, share))
