import type { DomainInputs } from "../DomainInputs.ts"
import type {
  DomainController,
  DomainDisk,
  DomainMemory,
  DomainMemoryBacking,
  DomainVcpu
} from "../DomainModel.ts"

export interface MemoryAndCpus {
  readonly memory: DomainMemory
  readonly currentMemory: DomainMemory
  readonly memoryBacking: DomainMemoryBacking | undefined
  readonly vcpu: DomainVcpu
}

/**
 * Builds the memory size, the vCPU count and `<memoryBacking>`. A virtiofs share needs guest
 * RAM that virtiofsd can map, so any such share makes the memory a shared memfd.
 */
export const buildMemory = (inputs: DomainInputs): MemoryAndCpus => {
  const memory: DomainMemory = { unit: "MiB", value: inputs.config.memoryMiB }
  const virtiofs = inputs.config.filesystems.some((share) => share.driver === "virtiofs")
  return {
    memory,
    currentMemory: memory,
    memoryBacking: virtiofs ? { source: { type: "memfd" }, access: { mode: "shared" } } : undefined,
    vcpu: { placement: "static", value: inputs.config.cpus }
  }
}

/** Counts the I/O threads that disks and controllers refer to; undefined when none does. */
export const countIoThreads = (
  disks: ReadonlyArray<DomainDisk>,
  controllers: ReadonlyArray<DomainController>
): number | undefined => {
  const ids = [
    ...disks.map((disk) => disk.driver.iothread),
    ...controllers.map((controller) => controller.driver?.iothread)
  ].filter((id): id is number => id !== undefined)
  return ids.length === 0 ? undefined : Math.max(...ids)
}
