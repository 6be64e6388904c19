import { vncPasswordPrefix } from "../../config/areas/Services.ts"
import type { DomainInputs } from "../DomainInputs.ts"
import type { DomainGraphics, DomainVideo } from "../DomainModel.ts"

/**
 * The address VNC listens on. With noVNC the built-in websocket proxy connects from this
 * host, so VNC stays on loopback. Plain `vnc` serves clients outside the container, so it
 * listens on every address.
 */
const vncListenAddress = { vnc: "0.0.0.0", novnc: "127.0.0.1" } as const

export interface DisplayDevices {
  readonly graphics: ReadonlyArray<DomainGraphics>
  readonly videos: ReadonlyArray<DomainVideo>
}

/**
 * Builds the graphics and video devices.
 *
 * - `GRAPHICS=vnc|novnc`: a VNC server and a virtio GPU, which OVMF, AAVMF and SeaBIOS
 *   (through its VGA mode on x86) can all draw on.
 * - `GPU=intel` with a host render node: an `egl-headless` display renders on the host GPU
 *   and the virtio GPU gets 3D acceleration (virgl). This needs QEMU's OpenGL modules
 *   (Debian's `qemu-system-modules-opengl`).
 * - Neither: `<model type='none'/>`, so libvirt adds no default video card.
 */
export const buildDisplay = (inputs: DomainInputs): DisplayDevices => {
  const { graphics } = inputs.config
  const renderNode = inputs.config.devices.gpu === "intel" ? inputs.renderNode : undefined
  const devices: Array<DomainGraphics> = []
  if (graphics.mode !== "none") {
    devices.push({
      type: "vnc",
      port: graphics.vncPort,
      autoport: "no",
      // The web console checks the whole password; VNC, and so libvirt, only its start.
      passwd:
        graphics.vncPassword === undefined ? undefined : vncPasswordPrefix(graphics.vncPassword),
      keymap: graphics.keymap,
      listen: { type: "address", address: vncListenAddress[graphics.mode] }
    })
  }
  if (renderNode !== undefined)
    devices.push({ type: "egl-headless", gl: { rendernode: renderNode } })
  if (devices.length === 0) return { graphics: [], videos: [{ model: { type: "none" } }] }

  const video: DomainVideo = {
    model: {
      type: "virtio",
      heads: 1,
      primary: "yes",
      acceleration: renderNode === undefined ? undefined : { accel3d: "yes" }
    }
  }
  return { graphics: devices, videos: [video] }
}
