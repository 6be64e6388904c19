import type { DomainInputs } from "../DomainInputs.ts"

/**
 * The `<boot order='N'/>` of every bootable device. libvirt rejects a domain in which two
 * devices share a number, so each device gets its own, counting up from 1 in `BOOT_ORDER`.
 */
export interface BootOrderPlan {
  readonly workDisk: number | undefined
  readonly installCdrom: number | undefined
  /** Boot order by NIC index (1 for `NETWORK_*`, 2 for `NETWORK2_*`, ...). */
  readonly nics: ReadonlyMap<number, number>
}

/**
 * Numbers the bootable devices in `BOOT_ORDER`: `hd` is the work disk, `cdrom` the installer
 * ISO (when one is attached) and `network` every NIC with `NETWORKn_BOOT=1`, in NIC order.
 * Two cases do what the variables ask for although `BOOT_ORDER` does not say it:
 * `network` with no NIC marked bootable boots from the first NIC, and a NIC marked bootable
 * while `BOOT_ORDER` lacks `network` is tried after every listed device.
 */
export const planBootOrder = (inputs: DomainInputs): BootOrderPlan => {
  const { boot, network } = inputs.config
  let next = 1
  let workDisk: number | undefined
  let installCdrom: number | undefined
  const nics = new Map<number, number>()

  const marked = network.nics.filter((nic) => nic.boot)
  const networkBootable = marked.length > 0 ? marked : network.nics.slice(0, 1)
  for (const device of boot.order) {
    if (device === "hd") workDisk = next++
    if (device === "cdrom" && inputs.installIso !== undefined) installCdrom = next++
    if (device === "network") for (const nic of networkBootable) nics.set(nic.index, next++)
  }
  for (const nic of marked) if (!nics.has(nic.index)) nics.set(nic.index, next++)

  return { workDisk, installCdrom, nics }
}
