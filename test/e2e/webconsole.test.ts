/**
 * The web console end to end: the compiled binary boots the test guest with GRAPHICS=novnc,
 * and headless Chromium (Debian's chromium, driven by playwright-core) logs in, shows the
 * guest's screen through noVNC and the built-in WebSocket-to-VNC bridge, and is turned away
 * with a wrong password. Every check shares one boot.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, readFileSync, statSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BrowserContext, chromium, type Page } from "playwright-core"
import { consolePage } from "../../src/webconsole/WebConsole.ts"
import {
  freePort,
  guestExec,
  guestImage,
  makeWorkDir,
  projectRoot,
  removeDir,
  reportTime,
  stopIfRunning,
  VmRun,
  writeTestCatalogue
} from "./support/harness.ts"
import { virsh, waitUntil } from "./support/remoteAccess.ts"

const bootTimeout = 15 * 60_000
/** Longer than VNC's 8 characters, so the web console and VNC check different lengths. */
const password = "Console-e2e-Secret-9"
/** Where the screenshot is kept for people to look at after the run. */
const screenshotPath = join(projectRoot, ".tmp", "webconsole-screenshot.png")
let workDir: string
let run: VmRun
let name: string
let novncPort: number
let vncPort: number
let profileDir: string
let context: BrowserContext

const consoleUrl = () => `https://localhost:${novncPort}${consolePage}`

/** The parts of the browser's DOM the page script uses; this project's types have no DOM. */
interface BrowserDocument {
  querySelector(selector: string): {
    readonly width: number
    readonly height: number
    readonly textContent: string | null
    getContext(kind: "2d"): {
      getImageData(x: number, y: number, width: number, height: number): { data: Uint8ClampedArray }
    } | null
  } | null
}

/** Size of noVNC's canvas and how much of it is lit, read from its pixels. */
const canvasStats = (page: Page) =>
  page.evaluate(() => {
    const document = (globalThis as unknown as { document: BrowserDocument }).document
    const canvas = document.querySelector("#noVNC_container canvas")
    if (canvas === null || canvas.width === 0) return undefined
    const pixels = canvas.getContext("2d")?.getImageData(0, 0, canvas.width, canvas.height).data
    if (pixels === undefined) return undefined
    let lit = 0
    const colours = new Set<number>()
    for (let i = 0; i < pixels.length; i += 4) {
      const [r, g, b] = [pixels[i] ?? 0, pixels[i + 1] ?? 0, pixels[i + 2] ?? 0]
      if (r + g + b > 96) lit += 1
      colours.add((r << 16) | (g << 8) | b)
    }
    const status = document.querySelector("#noVNC_status")?.textContent ?? ""
    return { width: canvas.width, height: canvas.height, lit, colours: colours.size, status }
  })

const logIn = async (page: Page, given: string) => {
  await page.goto(consoleUrl())
  await page.fill("#password", given)
  await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")])
}

beforeAll(async () => {
  const started = performance.now()
  workDir = makeWorkDir("webconsole")
  name = `wc-${process.pid}`
  novncPort = await freePort()
  vncPort = await freePort()
  run = new VmRun({
    DISTROS_FILE: writeTestCatalogue(workDir, "http://127.0.0.1:9/unused.qcow2", "f".repeat(64)),
    DISTRO: "test-debian-12",
    BOOT_FROM: guestImage(),
    DATA_DIR: join(workDir, "data"),
    GUEST_NAME: name,
    PERSIST: "0",
    NO_CONSOLE: "1",
    MEMORY: "1024",
    SSH_PORT: String(await freePort()),
    GRAPHICS: "novnc",
    VNC_PORT: String(vncPort),
    NOVNC_PORT: String(novncPort),
    VNC_PASSWORD: password,
    // Under TCG on a busy host the guest can take a minute or two to power off.
    SHUTDOWN_TIMEOUT: "120"
  })
  profileDir = mkdtempSync(join(tmpdir(), "vm-runner-chromium-"))
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    // The certificate is self-signed; a test below checks it against its own file instead.
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync"
    ]
  })
  await run.waitForLog(/the guest agent answers/, bootTimeout)
  reportTime("web console guest boot to agent", started)
}, bootTimeout + 60_000)

afterAll(async () => {
  await context?.close()
  await stopIfRunning(run)
  if (name !== undefined) {
    virsh("destroy", name)
    virsh("undefine", name, "--nvram")
  }
  if (profileDir !== undefined) removeDir(profileDir)
  if (workDir !== undefined) removeDir(workDir)
})

describe("web console", () => {
  test("rejects a wrong password", async () => {
    const page = await context.newPage()
    await logIn(page, "not-the-password")
    expect(page.url()).toContain("/login")
    expect(await page.textContent("[role=alert]")).toBe("Wrong password.")
    expect(await page.locator("#noVNC_container canvas").count()).toBe(0)
    await page.close()
  }, 60_000)

  test("the password opens the guest's screen", async () => {
    // Text on the first virtual terminal, so the screen is not only a login prompt.
    await guestExec(["--domain", name, "printf '\\n\\nvm-runner web console test\\n' > /dev/tty1"])
    const page = await context.newPage()
    await logIn(page, password)
    expect(page.url()).toBe(consoleUrl())
    let stats: Awaited<ReturnType<typeof canvasStats>>
    await waitUntil(
      "noVNC to draw the guest's screen",
      async () => {
        stats = await canvasStats(page)
        return stats !== undefined && stats.lit > 1000
      },
      120_000,
      2000
    )
    mkdirSync(join(projectRoot, ".tmp"), { recursive: true })
    await page.screenshot({ path: screenshotPath })
    expect(stats?.status).toContain("Connected")
    // The virtio GPU's mode under OVMF; at least a VGA text screen in any case.
    expect(stats?.width).toBeGreaterThanOrEqual(640)
    expect(stats?.height).toBeGreaterThanOrEqual(400)
    // Text in two colours or more on a dark background: neither blank nor a solid fill.
    expect(stats?.colours).toBeGreaterThanOrEqual(2)
    expect(stats?.lit).toBeLessThan(((stats?.width ?? 0) * (stats?.height ?? 0)) / 2)
    expect(statSync(screenshotPath).size).toBeGreaterThan(10_000)
    await page.close()
  }, 180_000)

  test("the WebSocket needs a login", async () => {
    const response = await fetch(`https://127.0.0.1:${novncPort}/websockify`, {
      headers: { upgrade: "websocket", connection: "upgrade", "sec-websocket-version": "13" },
      tls: { rejectUnauthorized: false }
    })
    expect(response.status).toBe(401)
  })

  test("the certificate covers localhost", async () => {
    const ca = readFileSync(join(workDir, "data/state/certs/vm-runner.crt"), "utf8")
    const response = await fetch(`https://localhost:${novncPort}/login`, { tls: { ca } })
    expect(response.status).toBe(200)
  })
})

describe("VNC", () => {
  test("listens on loopback and asks for a password", async () => {
    const security = await new Promise<Buffer>((resolve, reject) => {
      const socket = connect(vncPort, "127.0.0.1")
      let received = Buffer.alloc(0)
      socket.on("data", (chunk) => {
        received = Buffer.concat([received, Buffer.from(chunk)])
        if (received.length === 12) socket.write(received)
        if (received.length >= 14) {
          socket.destroy()
          resolve(received.subarray(12, 14))
        }
      })
      socket.on("error", reject)
    })
    // One security type, 2: VNC authentication.
    expect([...security]).toEqual([1, 2])
    const graphics = virsh("dumpxml", name, "--security-info").stdout
    expect(graphics).toContain(`<graphics type='vnc' port='${vncPort}'`)
    expect(graphics).toContain("listen='127.0.0.1'")
    expect(graphics).toContain(`passwd='${password.slice(0, 8)}'`)
  }, 30_000)

  test("never logs the password", () => {
    expect(run.stderr).not.toContain(password)
    expect(run.stdout).not.toContain(password)
  })

  test("SIGTERM stops the guest and the console", async () => {
    const code = await run.stop("SIGTERM", 400_000)
    // 0 when the guest powers off in time; 6 when it ignores the ACPI power button and the
    // guest agent's shutdown too, as the test guest under TCG can, and is stopped hard.
    expect([0, 6]).toContain(code)
    expect(virsh("domstate", name).exitCode).not.toBe(0)
    const closed = await fetch(`https://127.0.0.1:${novncPort}/login`, {
      tls: { rejectUnauthorized: false }
    }).catch((error: Error) => error)
    expect(closed).toBeInstanceOf(Error)
  }, 420_000)
})
