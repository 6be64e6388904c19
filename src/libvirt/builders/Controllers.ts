import type { DomainInputs } from "../DomainInputs.ts"
import type {
  DomainController,
  DomainDisk,
  DomainInput,
  DomainMemBalloon,
  DomainRng
} from "../DomainModel.ts"
import { ioThreadId } from "./Disks.ts"

/**
 * Builds the SCSI and USB controllers. A virtio-scsi controller is added when any disk or
 * CD-ROM sits on the SCSI bus. It takes the I/O thread when `DISK_TYPE=scsi` and `IO_THREAD=1`.
 * `USB=0` writes `model='none'`, because libvirt adds a default USB controller to a domain
 * that declares none. A USB disk keeps the controller even then, since it could not attach.
 */
export const buildControllers = (
  inputs: DomainInputs,
  disks: ReadonlyArray<DomainDisk>
): Array<DomainController> => {
  const { storage, devices } = inputs.config
  const controllers: Array<DomainController> = []
  if (disks.some((disk) => disk.target.bus === "scsi")) {
    controllers.push({
      type: "scsi",
      index: 0,
      model: "virtio-scsi",
      driver: storage.bus === "scsi" && storage.ioThread ? { iothread: ioThreadId } : undefined
    })
  }
  const usbDisks = disks.some((disk) => disk.target.bus === "usb")
  // NOTE: USB=0 with DISK_TYPE=usb keeps the controller here. The configuration check is
  // the place to reject that combination.
  const usb = devices.usb || usbDisks
  controllers.push({ type: "usb", index: 0, model: usb ? "qemu-xhci" : "none" })
  return controllers
}

/**
 * Builds the USB input devices: a tablet, whose absolute coordinates keep the VNC pointer in
 * step with the guest's, and on aarch64 with graphics a keyboard, because `virt` has no PS/2.
 */
export const buildInputs = (inputs: DomainInputs): Array<DomainInput> => {
  const { devices, graphics, arch } = inputs.config
  if (!devices.usb) return []
  const keyboard = arch === "aarch64" && graphics.mode !== "none"
  return keyboard
    ? [
        { type: "tablet", bus: "usb" },
        { type: "keyboard", bus: "usb" }
      ]
    : [{ type: "tablet", bus: "usb" }]
}

/** `BALLOON=0` writes `model='none'`, because libvirt adds a virtio balloon by default. */
export const buildMemBalloon = (inputs: DomainInputs): DomainMemBalloon => ({
  model: inputs.config.devices.balloon ? "virtio" : "none"
})

/** Builds a virtio RNG fed from the host's /dev/urandom, which does not block on Linux. */
export const buildRngs = (inputs: DomainInputs): Array<DomainRng> =>
  inputs.config.devices.rng
    ? [{ model: "virtio", backend: { model: "random", path: "/dev/urandom" } }]
    : []
