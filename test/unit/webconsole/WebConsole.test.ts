/**
 * The web console's HTTP and WebSocket handlers on a loopback server without TLS, bridged to a
 * scripted VNC server that speaks RFB 3.8 with VNC authentication, as QEMU does.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Server, TCPSocketListener } from "bun"
import { ByteQueue } from "../../../src/webconsole/ByteQueue.ts"
import { rfbVersion, vncAuthResponse } from "../../../src/webconsole/Rfb.ts"
import {
  consolePage,
  staticFile,
  webConsoleHandlers,
  websocketPath
} from "../../../src/webconsole/WebConsole.ts"

const password = "correct horse battery"
const serverInit = Buffer.from("SERVERINIT")
let webRoot = ""
let vnc: TCPSocketListener<{ queue: ByteQueue }>
let vncPassword = password
/** VNC connections the bridge holds open. */
let vncConnections = 0
let console: Server<unknown>
let base = ""
const logs: Array<string> = []

const u32 = (value: number) => {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value)
  return bytes
}

/** Plays QEMU's side of the handshake, then answers a ClientInit with `serverInit`. */
const playVncServer = async (queue: ByteQueue, write: (bytes: Uint8Array) => void) => {
  write(Buffer.from(rfbVersion))
  await queue.read(12)
  write(Buffer.of(1, 2))
  await queue.read(1)
  const challenge = Buffer.alloc(16, 0x5a)
  write(challenge)
  const response = await queue.read(16)
  if (!response.equals(vncAuthResponse(vncPassword, challenge))) {
    const reason = Buffer.from("Authentication failed")
    write(Buffer.concat([u32(1), u32(reason.length), reason]))
    return
  }
  write(u32(0))
  await queue.read(1)
  write(serverInit)
}

beforeAll(() => {
  webRoot = mkdtempSync(join(tmpdir(), "vm-runner-novnc-"))
  mkdirSync(join(webRoot, "app"))
  writeFileSync(join(webRoot, "vnc.html"), "<html>noVNC</html>")
  writeFileSync(join(webRoot, "app", "ui.js"), "export {}")
  writeFileSync(join(tmpdir(), "vm-runner-outside.txt"), "outside")

  vnc = Bun.listen<{ queue: ByteQueue }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open: (socket) => {
        vncConnections += 1
        socket.data = { queue: new ByteQueue() }
        void playVncServer(socket.data.queue, (bytes) => socket.write(bytes)).catch(() => {})
      },
      data: (socket, data) => socket.data.queue.push(data),
      close: (socket) => {
        vncConnections -= 1
        socket.data.queue.close(new Error("closed"))
      }
    }
  })

  const handlers = webConsoleHandlers(
    { machineName: "testvm", password, vncHost: "127.0.0.1", vncPort: vnc.port, webRoot },
    (level, message) => logs.push(`${level} ${message}`)
  )
  console = Bun.serve({ hostname: "127.0.0.1", port: 0, ...handlers }) as Server<unknown>
  base = `http://127.0.0.1:${console.port}`
})

afterAll(() => {
  console?.stop(true)
  vnc?.stop(true)
  rmSync(webRoot, { recursive: true, force: true })
})

const login = async (given: string) => {
  const body = new URLSearchParams({ password: given, next: consolePage })
  return fetch(`${base}/login`, { method: "POST", body, redirect: "manual" })
}

const sessionCookie = async () => {
  const response = await login(password)
  return (response.headers.get("set-cookie") ?? "").split(";")[0] ?? ""
}

/** Opens the WebSocket and collects what arrives until `count` bytes or a close. */
const openConsole = (cookie: string, origin?: string) => {
  const socket = new WebSocket(`ws://127.0.0.1:${console.port}${websocketPath}`, {
    headers: { cookie, ...(origin === undefined ? {} : { origin }) }
  } as unknown as string[])
  socket.binaryType = "arraybuffer"
  const received = new ByteQueue()
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.onclose = (event) => resolve({ code: event.code, reason: event.reason })
  })
  socket.onmessage = (event) => received.push(new Uint8Array(event.data as ArrayBuffer))
  const opened = new Promise<boolean>((resolve) => {
    socket.onopen = () => resolve(true)
    socket.onerror = () => resolve(false)
  })
  return { socket, received, closed, opened }
}

describe("pages", () => {
  test("the console page needs a login", async () => {
    const response = await fetch(`${base}${consolePage}`, { redirect: "manual" })
    expect(response.status).toBe(303)
    expect(response.headers.get("location")).toBe(`/login?next=${encodeURIComponent(consolePage)}`)
  })

  test("the login page has a password form", async () => {
    const response = await fetch(`${base}/login?next=%2Fvnc.html`)
    const text = await response.text()
    expect(response.status).toBe(200)
    expect(text).toContain('name="password"')
    expect(text).toContain('value="/vnc.html"')
    expect(response.headers.get("x-frame-options")).toBe("DENY")
  })

  test("a wrong password is rejected", async () => {
    const response = await login("wrong")
    expect(response.status).toBe(401)
    expect(await response.text()).toContain("Wrong password.")
    expect(response.headers.get("set-cookie")).toBeNull()
  })

  test("the right password sets a strict cookie", async () => {
    const response = await login(password)
    const cookie = response.headers.get("set-cookie") ?? ""
    expect(response.status).toBe(303)
    expect(response.headers.get("location")).toBe(consolePage)
    expect(cookie).toContain("HttpOnly")
    expect(cookie).toContain("Secure")
    expect(cookie).toContain("SameSite=Strict")
  })

  test("a logged-in browser gets noVNC's files", async () => {
    const cookie = await sessionCookie()
    const page = await fetch(`${base}/vnc.html`, { headers: { cookie } })
    expect(await page.text()).toBe("<html>noVNC</html>")
    const script = await fetch(`${base}/app/ui.js`, { headers: { cookie } })
    expect(script.headers.get("content-type")).toContain("javascript")
  })

  test("paths outside the web root are not found", async () => {
    const cookie = await sessionCookie()
    for (const path of ["/../vm-runner-outside.txt", "/%2e%2e/vm-runner-outside.txt", "/app"]) {
      const response = await fetch(`${base}${path}`, { headers: { cookie } })
      expect({ path, status: response.status }).toEqual({ path, status: 404 })
    }
  })

  test("staticFile stays inside the root", () => {
    expect(staticFile(webRoot, "/vnc.html")).toBe(join(webRoot, "vnc.html"))
    expect(staticFile(webRoot, "/../vm-runner-outside.txt")).toBeUndefined()
    expect(staticFile(webRoot, "/%2e%2e%2fvm-runner-outside.txt")).toBeUndefined()
    expect(staticFile(webRoot, "/%zz")).toBeUndefined()
  })
})

describe("WebSocket bridge", () => {
  test("needs a login", async () => {
    const response = await fetch(`${base}${websocketPath}`, {
      headers: { upgrade: "websocket", connection: "upgrade", "sec-websocket-version": "13" }
    })
    expect(response.status).toBe(401)
  })

  test("rejects a page of another site", async () => {
    const { opened } = openConsole(await sessionCookie(), "https://evil.example")
    expect(await opened).toBe(false)
  })

  test("answers VNC's challenge and offers no authentication", async () => {
    vncPassword = password
    const { socket, received, closed } = openConsole(await sessionCookie())
    expect((await received.read(12)).toString()).toBe(rfbVersion)
    socket.send(Buffer.from(rfbVersion))
    expect(await received.read(2)).toEqual(Buffer.of(1, 1))
    socket.send(Buffer.of(1))
    expect(await received.read(4)).toEqual(u32(0))
    socket.send(Buffer.of(1))
    expect(await received.read(serverInit.length)).toEqual(serverInit)
    socket.close()
    await closed
    for (let waited = 0; vncConnections > 0 && waited < 2000; waited += 20) await Bun.sleep(20)
    expect(vncConnections).toBe(0)
  })

  test("passes VNC's refusal on to noVNC", async () => {
    vncPassword = "another password"
    const { socket, received, closed } = openConsole(await sessionCookie())
    await received.read(12)
    socket.send(Buffer.from(rfbVersion))
    expect(await received.read(1)).toEqual(Buffer.of(0))
    const length = (await received.read(4)).readUInt32BE()
    expect((await received.read(length)).toString()).toContain("rejected the password")
    await closed
    vncPassword = password
  })
})

describe("rate limit", () => {
  test("refuses logins after 10 failures", async () => {
    for (let i = 0; i < 10; i++) await login("wrong")
    const response = await login(password)
    expect(response.status).toBe(429)
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0)
    expect(logs.some((line) => line.includes("too many recent failures"))).toBe(true)
  })
})
