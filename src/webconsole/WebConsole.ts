import { randomBytes } from "node:crypto"
import { existsSync, statSync } from "node:fs"
import { resolve, sep } from "node:path"
import type { Server, ServerWebSocket, WebSocketHandler } from "bun"
import { Cause, Data, Effect } from "effect"
import type { LaunchPlan } from "../runtime/Plan.ts"
import { type ServerCertificate, serverCertificate } from "./Certificate.ts"
import { FailureLimiter, passwordMatches } from "./LoginGuard.ts"
import { loginPage, safeNext } from "./LoginPage.ts"
import { VncBridge } from "./VncBridge.ts"

/** Where Debian's `novnc` package installs the noVNC web client. */
export const novncDir = "/usr/share/novnc"
/** The page users open: noVNC, connecting at once and scaling the screen to the window. */
export const consolePage = "/vnc.html?autoconnect=1&resize=scale"
/** noVNC's default WebSocket path (its `path` setting). */
export const websocketPath = "/websockify"

const cookieName = "vm_runner_console"
/** How long a login lasts; a console left open longer asks for the password again. */
export const sessionLifetimeMs = 12 * 60 * 60 * 1000

export class WebConsoleError extends Data.TaggedError("WebConsoleError")<{
  readonly detail: string
}> {
  override get message(): string {
    return `the web console cannot start: ${this.detail}`
  }
}

export interface WebConsoleOptions {
  readonly machineName: string
  /** The password of both the web console and VNC. */
  readonly password: string
  readonly vncHost: string
  readonly vncPort: number
  readonly webRoot: string
}

type Log = (level: "debug" | "info" | "warning", message: string) => void

interface SocketData {
  bridge: VncBridge | undefined
}

/** Login sessions of the web console: random cookie values that expire. */
class ConsoleSessions {
  private readonly expiry = new Map<string, number>()

  constructor(private readonly now: () => number = Date.now) {}

  create(): string {
    const token = randomBytes(32).toString("base64url")
    this.expiry.set(token, this.now() + sessionLifetimeMs)
    return token
  }

  valid(token: string | undefined): boolean {
    if (token === undefined) return false
    const expires = this.expiry.get(token)
    if (expires === undefined) return false
    if (expires > this.now()) return true
    this.expiry.delete(token)
    return false
  }
}

const cookieValue = (request: Request): string | undefined => {
  const header = request.headers.get("cookie") ?? ""
  for (const part of header.split(";")) {
    const [name, ...value] = part.trim().split("=")
    if (name === cookieName) return value.join("=")
  }
  return undefined
}

/** Headers on every response: no framing by other sites, no sniffing, no referrers. */
const securityHeaders = {
  "X-Frame-Options": "DENY",
  "Content-Security-Policy": "frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer"
} as const

type Body = ConstructorParameters<typeof Response>[0]

const respond = (body: Body, status: number, headers: Record<string, string> = {}) =>
  new Response(body, { status, headers: { ...securityHeaders, ...headers } })

const redirect = (location: string, headers: Record<string, string> = {}) =>
  respond(null, 303, { Location: location, ...headers })

/**
 * The file under `webRoot` that a URL path names, or undefined when it names none or tries
 * to leave `webRoot`. Symbolic links inside `webRoot` are followed: Debian's package uses them.
 */
export const staticFile = (webRoot: string, pathname: string): string | undefined => {
  let decoded: string
  try {
    decoded = decodeURIComponent(pathname)
  } catch {
    return undefined
  }
  if (decoded.includes("\0")) return undefined
  const root = resolve(webRoot)
  const full = resolve(root, `.${decoded}`)
  if (!full.startsWith(root + sep)) return undefined
  try {
    return statSync(full).isFile() ? full : undefined
  } catch {
    return undefined
  }
}

/** True when a WebSocket request comes from a page of this server, or from no page at all. */
const sameOrigin = (request: Request): boolean => {
  const origin = request.headers.get("origin")
  if (origin === null) return true
  try {
    return new URL(origin).host === request.headers.get("host")
  } catch {
    return false
  }
}

/**
 * The web console's request and WebSocket handlers: a login page, noVNC's files for logged-in
 * browsers, and a WebSocket-to-VNC bridge at `/websockify`.
 */
export const webConsoleHandlers = (options: WebConsoleOptions, log: Log) => {
  const sessions = new ConsoleSessions()
  const limiter = new FailureLimiter()

  const login = async (request: Request): Promise<Response> => {
    const form = await request.formData().catch(() => undefined)
    const given = form?.get("password")
    const next = safeNext(String(form?.get("next") ?? ""), consolePage)
    const waitMs = limiter.retryAfterMs()
    if (waitMs > 0) {
      log("warning", "web console: rejected a login because of too many recent failures")
      return respond(
        loginPage(options.machineName, next, "Too many failed logins; wait a minute."),
        429,
        {
          "Content-Type": "text/html; charset=utf-8",
          "Retry-After": String(Math.ceil(waitMs / 1000))
        }
      )
    }
    if (typeof given !== "string" || !passwordMatches(given, options.password)) {
      const count = limiter.recordFailure()
      log("warning", `web console: rejected a wrong password (${count} failures since start)`)
      return respond(loginPage(options.machineName, next, "Wrong password."), 401, {
        "Content-Type": "text/html; charset=utf-8"
      })
    }
    log("info", "web console: a browser logged in")
    const cookie =
      `${cookieName}=${sessions.create()}; Path=/; Secure; HttpOnly; SameSite=Strict; ` +
      `Max-Age=${sessionLifetimeMs / 1000}`
    return redirect(next, { "Set-Cookie": cookie })
  }

  const fetch = async (
    request: Request,
    server: Server<SocketData>
  ): Promise<Response | undefined> => {
    const url = new URL(request.url)
    log("debug", `web console: ${request.method} ${url.pathname}`)
    if (url.pathname === "/login") {
      if (request.method === "POST") return login(request)
      const next = safeNext(url.searchParams.get("next"), consolePage)
      return respond(loginPage(options.machineName, next), 200, {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store"
      })
    }
    const loggedIn = sessions.valid(cookieValue(request))
    if (url.pathname === websocketPath) {
      if (!loggedIn || !sameOrigin(request)) {
        log("warning", "web console: rejected a WebSocket without a login from this site")
        return respond("log in first", 401)
      }
      const protocols = request.headers.get("sec-websocket-protocol") ?? ""
      const binary = protocols.split(",").some((protocol) => protocol.trim() === "binary")
      const upgraded = server.upgrade(request, {
        data: { bridge: undefined },
        headers: binary ? { "Sec-WebSocket-Protocol": "binary" } : {}
      })
      return upgraded ? undefined : respond("expected a WebSocket upgrade", 400)
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return respond("method not allowed", 405, { Allow: "GET, HEAD" })
    }
    if (!loggedIn) {
      return redirect(`/login?next=${encodeURIComponent(url.pathname + url.search)}`)
    }
    if (url.pathname === "/") return redirect(consolePage)
    const file = staticFile(options.webRoot, url.pathname)
    if (file === undefined) return respond("not found", 404)
    return respond(Bun.file(file), 200, { "Cache-Control": "no-cache" })
  }

  const websocket: WebSocketHandler<SocketData> = {
    open: (socket: ServerWebSocket<SocketData>) => {
      const bridge = new VncBridge(
        { send: (data) => socket.send(data), close: (code, reason) => socket.close(code, reason) },
        {
          vncHost: options.vncHost,
          vncPort: options.vncPort,
          vncPassword: options.password,
          log
        }
      )
      socket.data.bridge = bridge
      void bridge.start()
    },
    message: (socket, message) => {
      if (typeof message === "string") {
        socket.close(1003, "expected binary RFB messages")
        return
      }
      socket.data.bridge?.onBrowserMessage(message)
    },
    drain: (socket) => socket.data.bridge?.onBrowserDrain(),
    close: (socket) => socket.data.bridge?.onBrowserClose()
  }

  return { fetch, websocket }
}

/** Serves the web console over HTTPS on `port` until interrupted. */
export const serveWebConsole = Effect.fn("WebConsole.serve")(function* (
  options: WebConsoleOptions,
  port: number,
  certificate: ServerCertificate
) {
  if (!existsSync(`${options.webRoot}/vnc.html`)) {
    return yield* new WebConsoleError({
      detail: `noVNC is not installed at ${options.webRoot} (Debian and Ubuntu package novnc)`
    })
  }
  const services = yield* Effect.context<never>()
  const runLog = Effect.runForkWith(services)
  const log: Log = (level, message) =>
    void runLog(
      level === "debug"
        ? Effect.logDebug(message)
        : level === "info"
          ? Effect.logInfo(message)
          : Effect.logWarning(message)
    )
  const handlers = webConsoleHandlers(options, log)
  const server = yield* Effect.acquireRelease(
    Effect.try({
      try: () =>
        Bun.serve<SocketData>({
          hostname: "0.0.0.0",
          port,
          tls: { cert: certificate.cert, key: certificate.key },
          fetch: handlers.fetch,
          websocket: handlers.websocket
        }),
      catch: (cause) => new WebConsoleError({ detail: `cannot listen on port ${port}: ${cause}` })
    }),
    (server) => Effect.promise(() => server.stop(true))
  )
  yield* Effect.logInfo(`web console at https://localhost:${server.port}${consolePage}`)
  return yield* Effect.never
})

/**
 * The web console of this run (`GRAPHICS=novnc`), for the launcher to fork once the domain
 * has started. Its failures are logged; they never end the run.
 */
export const webConsoleService = (plan: LaunchPlan) =>
  Effect.gen(function* () {
    const { graphics } = plan.config
    if (graphics.vncPassword === undefined) {
      return yield* new WebConsoleError({ detail: "no console password was set or generated" })
    }
    const certificate = yield* serverCertificate(graphics, plan.layout.certsDir, "the web console")
    yield* serveWebConsole(
      {
        machineName: plan.config.name,
        password: graphics.vncPassword,
        vncHost: "127.0.0.1",
        vncPort: graphics.vncPort,
        webRoot: novncDir
      },
      graphics.novncPort,
      certificate
    )
  }).pipe(
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause)
        ? Effect.interrupt
        : Effect.logError("the web console stopped; the guest keeps running", cause)
    ),
    Effect.scoped,
    Effect.annotateLogs({ service: "web console" })
  )
