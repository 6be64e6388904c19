import { describe, expect, test } from "bun:test"
import { buildDisplay } from "../../../../src/libvirt/builders/Graphics.ts"
import { makeInputs } from "../fixtures.ts"

const renderNode = "/dev/dri/renderD128"

describe("buildDisplay", () => {
  test("no graphics means no video card", () => {
    expect(buildDisplay(makeInputs())).toEqual({
      graphics: [],
      videos: [{ model: { type: "none" } }]
    })
  })

  test("vnc listens on every address", () => {
    const display = buildDisplay(
      makeInputs({ config: { graphics: { mode: "vnc", vncPort: 5901, keymap: "de" } } })
    )
    expect(display.graphics).toEqual([
      {
        type: "vnc",
        port: 5901,
        autoport: "no",
        passwd: undefined,
        keymap: "de",
        listen: { type: "address", address: "0.0.0.0" }
      }
    ])
    expect(display.videos).toEqual([
      { model: { type: "virtio", heads: 1, primary: "yes", acceleration: undefined } }
    ])
  })

  test("novnc keeps VNC on loopback", () => {
    const display = buildDisplay(makeInputs({ config: { graphics: { mode: "novnc" } } }))
    expect(display.graphics[0]).toMatchObject({
      type: "vnc",
      listen: { type: "address", address: "127.0.0.1" }
    })
  })

  test("VNC password is passed on", () => {
    const display = buildDisplay(
      makeInputs({ config: { graphics: { mode: "vnc", vncPassword: "s3cret" } } })
    )
    expect(display.graphics[0]).toMatchObject({ type: "vnc", passwd: "s3cret" })
  })

  test("intel GPU with a render node adds egl-headless", () => {
    const display = buildDisplay(
      makeInputs({ renderNode, config: { graphics: { mode: "vnc" }, devices: { gpu: "intel" } } })
    )
    expect(display.graphics.map((graphics) => graphics.type)).toEqual(["vnc", "egl-headless"])
    expect(display.graphics[1]).toEqual({ type: "egl-headless", gl: { rendernode: renderNode } })
    expect(display.videos[0]?.model.acceleration).toEqual({ accel3d: "yes" })
  })

  test("intel GPU works without VNC", () => {
    const display = buildDisplay(makeInputs({ renderNode, config: { devices: { gpu: "intel" } } }))
    expect(display.graphics.map((graphics) => graphics.type)).toEqual(["egl-headless"])
    expect(display.videos[0]?.model.type).toBe("virtio")
  })

  test("intel GPU without a render node changes nothing", () => {
    const display = buildDisplay(makeInputs({ config: { devices: { gpu: "intel" } } }))
    expect(display.graphics).toEqual([])
    expect(display.videos).toEqual([{ model: { type: "none" } }])
  })

  test("render node alone does not enable the GPU", () => {
    const display = buildDisplay(makeInputs({ renderNode }))
    expect(display.graphics).toEqual([])
  })
})
