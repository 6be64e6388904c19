import { planBootOrder } from "./builders/BootOrder.ts"
import { buildCdroms } from "./builders/Cdroms.ts"
import { buildConsoleDevices } from "./builders/Channels.ts"
import {
  buildControllers,
  buildInputs,
  buildMemBalloon,
  buildRngs
} from "./builders/Controllers.ts"
import { buildCpu } from "./builders/Cpu.ts"
import { buildStorageDisks } from "./builders/Disks.ts"
import { assignDiskTargets } from "./builders/DiskTargets.ts"
import { buildClock, buildFeatures, buildPm } from "./builders/Features.ts"
import { buildFilesystems } from "./builders/Filesystems.ts"
import { buildDisplay } from "./builders/Graphics.ts"
import { buildNetwork } from "./builders/Interfaces.ts"
import { buildMemory, countIoThreads } from "./builders/Memory.ts"
import { buildOs } from "./builders/Os.ts"
import { buildQemuCommandline } from "./builders/QemuCommandline.ts"
import { buildTpms } from "./builders/Tpm.ts"
import type { DomainInputs } from "./DomainInputs.ts"
import type { Domain } from "./DomainModel.ts"
import { serializeDomain } from "./DomainXml.ts"

/** Builds the whole domain from the resolved configuration and the host facts. */
export const buildDomain = (inputs: DomainInputs): Domain => {
  const boot = planBootOrder(inputs)
  const storage = buildStorageDisks(inputs, boot)
  const disks = assignDiskTargets([...storage.disks, ...buildCdroms(inputs, boot)])
  const controllers = buildControllers(inputs, disks)
  const network = buildNetwork(inputs, boot)
  const display = buildDisplay(inputs)
  const consoles = buildConsoleDevices(inputs)

  return {
    type: inputs.accel === "kvm" ? "kvm" : "qemu",
    name: inputs.config.name,
    uuid: inputs.uuid,
    ...buildMemory(inputs),
    iothreads: countIoThreads(disks, controllers),
    os: buildOs(inputs),
    features: buildFeatures(inputs),
    cpu: buildCpu(inputs),
    clock: buildClock(inputs),
    // A guest that powers off or crashes ends the run, and a reboot stays inside it.
    onPoweroff: "destroy",
    onReboot: "restart",
    onCrash: "destroy",
    pm: buildPm(inputs),
    devices: {
      disks,
      controllers,
      filesystems: buildFilesystems(inputs),
      interfaces: network.interfaces,
      serials: consoles.serials,
      consoles: consoles.consoles,
      channels: consoles.channels,
      inputs: buildInputs(inputs),
      tpms: buildTpms(inputs),
      graphics: display.graphics,
      videos: display.videos,
      memballoon: buildMemBalloon(inputs),
      rngs: buildRngs(inputs)
    },
    qemuCommandline: buildQemuCommandline(inputs, network.userNetworkNics, storage.nvmeDisks)
  }
}

/** Renders the domain XML that `virsh define` reads. */
export const renderDomainXml = (inputs: DomainInputs): string =>
  serializeDomain(buildDomain(inputs))
