import type { Socket } from "bun"
import { ByteQueue } from "./ByteQueue.ts"
import { acceptClient, authenticateToServer, type RfbStream } from "./Rfb.ts"

/** The browser side of a bridge: a WebSocket that the server already upgraded. */
export interface BrowserSocket {
  /** Bun's send status: bytes sent, -1 when queued under backpressure, 0 when dropped. */
  send(data: Uint8Array): number
  close(code?: number, reason?: string): void
}

export interface BridgeOptions {
  readonly vncHost: string
  readonly vncPort: number
  /** The VNC password the guest's display asks for, or undefined when it asks for none. */
  readonly vncPassword: string | undefined
  readonly log: (level: "debug" | "warning", message: string) => void
}

/** WebSocket close code 1011: the server hit a condition that stops it from serving. */
const closeServerError = 1011

/**
 * Joins one browser WebSocket to the guest's VNC server. The bridge answers VNC's password
 * challenge itself, because the browser already logged in to the web console, and offers the
 * browser no authentication. After both handshakes it passes bytes through in both directions,
 * pausing the VNC socket while the browser's send queue is full.
 */
export class VncBridge {
  private readonly fromBrowser = new ByteQueue()
  private readonly fromServer = new ByteQueue()
  private server: Socket<undefined> | undefined
  private relaying = false
  private closed = false
  /** Bytes for the VNC server that its socket did not take yet. */
  private pendingToServer: Array<Buffer> = []

  constructor(
    private readonly browser: BrowserSocket,
    private readonly options: BridgeOptions
  ) {}

  private readonly browserStream: RfbStream = {
    read: (length) => this.fromBrowser.read(length),
    write: (bytes) => {
      this.browser.send(bytes)
    }
  }

  private readonly serverStream: RfbStream = {
    read: (length) => this.fromServer.read(length),
    write: (bytes) => this.writeToServer(Buffer.from(bytes))
  }

  /** Connects to the VNC server and runs both handshakes; never rejects. */
  async start(): Promise<void> {
    const { vncHost, vncPort } = this.options
    try {
      this.server = await Bun.connect({
        hostname: vncHost,
        port: vncPort,
        socket: {
          data: (_socket, data) => this.onServerData(data),
          drain: () => this.flushToServer(),
          close: () => this.close("the guest's display closed the connection"),
          error: (_socket, error) => this.close(`VNC connection failed: ${error.message}`)
        }
      })
    } catch (error) {
      await this.reject(
        `the guest's display at ${vncHost}:${vncPort} does not answer (${String(error)}); ` +
          "is the guest powered on?"
      )
      return
    }
    try {
      await authenticateToServer(this.serverStream, this.options.vncPassword)
    } catch (error) {
      await this.reject(error instanceof Error ? error.message : String(error))
      return
    }
    try {
      await acceptClient(this.browserStream)
    } catch (error) {
      this.close(error instanceof Error ? error.message : String(error))
      return
    }
    this.relaying = true
    const early = this.fromBrowser.drain()
    if (early.length > 0) this.writeToServer(early)
    const pending = this.fromServer.drain()
    if (pending.length > 0) this.sendToBrowser(pending)
    this.options.log("debug", "web console: VNC session started")
  }

  onBrowserMessage(data: Uint8Array): void {
    if (this.relaying) this.writeToServer(Buffer.from(data))
    else this.fromBrowser.push(data)
  }

  /** The browser's send queue drained: read from the VNC server again. */
  onBrowserDrain(): void {
    this.server?.resume()
  }

  onBrowserClose(): void {
    this.close(undefined)
  }

  /** Offers the browser no security type, with `reason`, which noVNC shows; then closes. */
  private async reject(reason: string): Promise<void> {
    this.options.log("warning", `web console: ${reason}`)
    try {
      await acceptClient(this.browserStream, reason)
    } catch {
      // The browser left during the handshake; there is nobody to tell.
    }
    this.close(undefined)
  }

  private onServerData(data: Uint8Array): void {
    if (this.relaying) this.sendToBrowser(data)
    else this.fromServer.push(data)
  }

  private sendToBrowser(data: Uint8Array): void {
    if (this.closed) return
    const status = this.browser.send(data)
    // -1: Bun queued the message; stop reading VNC until the browser's queue drains.
    if (status === -1) this.server?.pause()
  }

  private writeToServer(data: Buffer): void {
    if (this.closed || this.server === undefined) return
    if (this.pendingToServer.length > 0) {
      this.pendingToServer.push(data)
      return
    }
    const written = this.server.write(data)
    if (written < data.length) this.pendingToServer.push(data.subarray(Math.max(written, 0)))
  }

  private flushToServer(): void {
    const server = this.server
    if (server === undefined) return
    while (this.pendingToServer.length > 0) {
      const next = this.pendingToServer[0] as Buffer
      const written = server.write(next)
      if (written < next.length) {
        this.pendingToServer[0] = next.subarray(Math.max(written, 0))
        return
      }
      this.pendingToServer.shift()
    }
  }

  /** Closes both sides once; `reason` is logged and sent to the browser. */
  close(reason: string | undefined): void {
    if (this.closed) return
    this.closed = true
    const error = new Error(reason ?? "the connection closed")
    this.fromBrowser.close(error)
    this.fromServer.close(error)
    this.server?.end()
    if (reason !== undefined) this.options.log("debug", `web console: ${reason}`)
    // A WebSocket close reason is at most 123 bytes.
    const closeReason = Buffer.from(reason ?? "")
      .subarray(0, 120)
      .toString("utf8")
    this.browser.close(reason === undefined ? 1000 : closeServerError, closeReason)
  }
}
