import { createHash } from "node:crypto"
import { Effect } from "effect"
import { ImageCache } from "../images/ImageCache.ts"
import {
  type BootOverride,
  type BootOverrideEnabled,
  type BootTarget,
  bootOverrideModes,
  bootTargets,
  MachineControl
} from "../runtime/MachineControl.ts"
import { type FailureLimiter, passwordMatches } from "../webconsole/LoginGuard.ts"
import { errorBody, type MessageId } from "./Messages.ts"
import * as Resources from "./Resources.ts"
import { type Session, type SessionStore, sessionTimeoutSeconds } from "./Sessions.ts"

export interface RedfishRequest {
  readonly method: string
  /** The URL path, without the query string. */
  readonly path: string
  readonly header: (name: string) => string | null
  readonly body: string
}

export interface RedfishReply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  /** A JSON document, or text with its own Content-Type header. */
  readonly body: unknown
}

export interface RedfishSettings {
  readonly systemId: string
  readonly username: string
  readonly password: string
  readonly version: string
  readonly downloadAttempts: number
}

type Services = MachineControl | ImageCache

const reply = (
  status: number,
  body: unknown = undefined,
  headers: Record<string, string> = {}
): RedfishReply => ({ status, headers, body })

const failure = (
  status: number,
  id: MessageId,
  args: ReadonlyArray<string> = [],
  detail?: string,
  headers: Record<string, string> = {}
): RedfishReply => reply(status, errorBody(id, args, detail), headers)

/** A strong ETag computed from the representation, so it changes whenever the resource does. */
export const etagOf = (document: unknown): string =>
  `"${createHash("sha256").update(JSON.stringify(document)).digest("hex").slice(0, 20)}"`

/**
 * Whether an If-Match header allows a change to a resource whose ETag is `current`. Weak tags
 * (`W/"..."`) are compared by their opaque part, because some clients resend the ETag of a GET
 * in its weak form.
 */
export const ifMatchAllows = (header: string | null, current: string): boolean => {
  if (header === null || header.trim() === "*") return true
  const opaque = (tag: string) => tag.trim().replace(/^W\//, "")
  return header.split(",").some((tag) => opaque(tag) === opaque(current))
}

/** Parses a JSON request body; undefined when it is not a JSON object. */
const parseObject = (body: string): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(body === "" ? "{}" : body)
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

/** Strips trailing slashes, except from the service root, whose URI ends in one. */
export const normalizePath = (path: string): string => {
  const trimmed = path.replace(/\/+$/, "")
  return trimmed === "/redfish/v1" ? Resources.paths.root : trimmed === "" ? "/" : trimmed
}

/** Resources the service answers without credentials, as DSP0266 requires. */
const publicPaths = new Set<string>([
  "/redfish",
  Resources.paths.root,
  Resources.paths.odata,
  Resources.paths.metadata
])

const decodeBasic = (header: string): { user: string; password: string } | undefined => {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim())
  if (match === null) return undefined
  const text = Buffer.from(match[1] ?? "", "base64").toString("utf8")
  const colon = text.indexOf(":")
  return colon < 0 ? undefined : { user: text.slice(0, colon), password: text.slice(colon + 1) }
}

/**
 * The Redfish service's request handler. Every request but the public ones needs HTTP basic
 * authentication or an `X-Auth-Token` from SessionService.
 */
export const makeRedfishHandler = (
  settings: RedfishSettings,
  sessions: SessionStore,
  limiter: FailureLimiter
) => {
  const identity = (facts: MachineControl["Service"]["facts"]): Resources.ServiceIdentity => ({
    systemId: settings.systemId,
    facts,
    version: settings.version
  })

  const credentialsMatch = (user: string, password: string) =>
    // Both comparisons always run, so timing does not tell which one failed.
    [passwordMatches(user, settings.username), passwordMatches(password, settings.password)].every(
      Boolean
    )

  const tooManyFailures = (): RedfishReply | undefined => {
    const waitMs = limiter.retryAfterMs()
    if (waitMs === 0) return undefined
    return failure(429, "GeneralError", [], "too many failed logins; try again later", {
      "Retry-After": String(Math.ceil(waitMs / 1000))
    })
  }

  const rejectLogin = (user: string) =>
    Effect.gen(function* () {
      const count = limiter.recordFailure()
      yield* Effect.logWarning(
        `Redfish: rejected the credentials of user ${JSON.stringify(user)} ` +
          `(${count} failed logins since the service started)`
      )
      return failure(401, "NoValidSession", [], "invalid user name or password", {
        "WWW-Authenticate": 'Basic realm="Redfish"'
      })
    })

  /** Returns the user of an authenticated request, or the reply that rejects it. */
  const authenticate = (request: RedfishRequest) =>
    Effect.gen(function* () {
      const token = request.header("x-auth-token")
      if (token !== null) {
        const session = sessions.use(token)
        if (session !== undefined) return { user: session.userName } as const
        return failure(401, "NoValidSession", [], "the session token is invalid or expired")
      }
      const basic = decodeBasic(request.header("authorization") ?? "")
      if (basic === undefined) {
        return failure(401, "NoValidSession", [], "authentication required", {
          "WWW-Authenticate": 'Basic realm="Redfish"'
        })
      }
      const blocked = tooManyFailures()
      if (blocked !== undefined) return blocked
      if (!credentialsMatch(basic.user, basic.password)) return yield* rejectLogin(basic.user)
      return { user: basic.user } as const
    })

  const login = (request: RedfishRequest) =>
    Effect.gen(function* () {
      const body = parseObject(request.body)
      if (body === undefined) return failure(400, "MalformedJSON")
      const user = typeof body.UserName === "string" ? body.UserName : undefined
      const password = typeof body.Password === "string" ? body.Password : undefined
      if (user === undefined || password === undefined) {
        return failure(400, "ActionParameterMissing", ["Session login", "UserName and Password"])
      }
      const blocked = tooManyFailures()
      if (blocked !== undefined) return blocked
      if (!credentialsMatch(user, password)) return yield* rejectLogin(user)
      const session: Session = sessions.create(user)
      yield* Effect.logDebug(`Redfish: user ${user} logged in (session ${session.id})`)
      return reply(201, Resources.session(session.id, user), {
        "X-Auth-Token": session.token,
        Location: Resources.paths.session(session.id)
      })
    })

  /** A GET of one resource: the document with its ETag. */
  const document = (body: unknown, allow = "GET") =>
    reply(200, body, { ETag: etagOf(body), Allow: allow })

  const systemDocument = Effect.gen(function* () {
    const machine = yield* MachineControl
    const power = yield* machine.powerState()
    const boot = yield* machine.bootOverride()
    return Resources.system(identity(machine.facts), { power, boot })
  })

  const patchSystem = (request: RedfishRequest) =>
    Effect.gen(function* () {
      const machine = yield* MachineControl
      const current = yield* systemDocument
      if (!ifMatchAllows(request.header("if-match"), etagOf(current))) {
        return failure(412, "PreconditionFailed")
      }
      const body = parseObject(request.body)
      if (body === undefined) return failure(400, "MalformedJSON")
      for (const key of Object.keys(body)) {
        if (key !== "Boot") return failure(400, "PropertyUnknown", [key])
      }
      const boot = body.Boot
      if (typeof boot !== "object" || boot === null) {
        return failure(400, "PropertyUnknown", ["Boot"], "expected a Boot object")
      }
      const parsed = parseBoot(boot as Record<string, unknown>, machine.facts.bootMode)
      if ("status" in parsed) return parsed
      const previous = yield* machine.bootOverride()
      yield* machine.setBootOverride({
        enabled: parsed.enabled ?? previous.enabled,
        target: parsed.target ?? previous.target
      })
      const updated = yield* systemDocument
      return document(updated, "GET, PATCH")
    })

  const reset = (request: RedfishRequest, user: string) =>
    Effect.gen(function* () {
      const machine = yield* MachineControl
      const action = "ComputerSystem.Reset"
      const body = parseObject(request.body)
      if (body === undefined) return failure(400, "MalformedJSON")
      const resetType = body.ResetType
      if (resetType === undefined)
        return failure(400, "ActionParameterMissing", [action, "ResetType"])
      if (!Resources.resetTypes.includes(resetType as Resources.ResetType)) {
        return failure(400, "ActionParameterValueNotInList", [
          String(resetType),
          "ResetType",
          action
        ])
      }
      yield* Effect.logInfo(`Redfish: ${action} ${resetType} requested by ${user}`)
      const operations: Record<Resources.ResetType, () => Effect.Effect<void, unknown>> = {
        On: machine.powerOn,
        ForceOff: machine.forceOff,
        GracefulShutdown: machine.gracefulShutdown,
        ForceRestart: machine.forceRestart,
        GracefulRestart: machine.gracefulRestart,
        PushPowerButton: () =>
          Effect.flatMap(machine.powerState(), (power) =>
            power === "Off" ? machine.powerOn() : machine.gracefulShutdown()
          )
      }
      yield* operations[resetType as Resources.ResetType]()
      return reply(204)
    })

  const insertMedia = (request: RedfishRequest, user: string) =>
    Effect.gen(function* () {
      const machine = yield* MachineControl
      const images = yield* ImageCache
      const action = "VirtualMedia.InsertMedia"
      const body = parseObject(request.body)
      if (body === undefined) return failure(400, "MalformedJSON")
      const image = body.Image
      if (typeof image !== "string")
        return failure(400, "ActionParameterMissing", [action, "Image"])
      if (!/^https?:\/\/[^\s]+$/i.test(image)) {
        return failure(
          400,
          "ActionParameterValueFormatError",
          [image, "Image", action],
          "Image must be an http or https URL of an ISO"
        )
      }
      for (const [parameter, supported] of [
        ["Inserted", true],
        ["WriteProtected", true]
      ] as const) {
        if (body[parameter] !== undefined && body[parameter] !== supported) {
          return failure(400, "ActionParameterValueNotInList", [
            String(body[parameter]),
            parameter,
            action
          ])
        }
      }
      if ((yield* machine.media()) !== undefined) {
        return failure(409, "ResourceInUse", [], "a medium is inserted; eject it first")
      }
      yield* Effect.logInfo(`Redfish: ${action} of ${image} requested by ${user}`)
      const resolved = yield* images
        .resolveBootSource({ _tag: "Url", url: image, hint: "iso" }, settings.downloadAttempts)
        .pipe(Effect.result)
      if (resolved._tag === "Failure") {
        return failure(400, "CouldNotEstablishConnection", [image], resolved.failure.message)
      }
      const file = resolved.success
      if (file._tag !== "Iso") {
        return failure(
          400,
          "ActionParameterValueFormatError",
          [image, "Image", action],
          `${image} is not an ISO image`
        )
      }
      yield* machine.insertMedia({ image, path: file.path })
      return reply(204)
    })

  const ejectMedia = (user: string) =>
    Effect.gen(function* () {
      const machine = yield* MachineControl
      yield* Effect.logInfo(`Redfish: VirtualMedia.EjectMedia requested by ${user}`)
      yield* machine.ejectMedia()
      return reply(204)
    })

  /** Handles an authenticated request for `path`. */
  const route = (request: RedfishRequest, path: string, user: string) =>
    Effect.gen(function* () {
      const machine = yield* MachineControl
      const id = identity(machine.facts)
      const method = request.method
      const only = (allow: string, handle: () => Effect.Effect<RedfishReply, unknown, Services>) =>
        allow.split(", ").includes(method === "HEAD" ? "GET" : method)
          ? handle()
          : Effect.succeed(
              failure(405, "GeneralError", [], `${method} is not allowed on ${path}`, {
                Allow: allow
              })
            )
      const systemPath = Resources.paths.system(settings.systemId)
      const sessionMatch = /^\/redfish\/v1\/SessionService\/Sessions\/([^/]+)$/.exec(path)

      switch (path) {
        case Resources.paths.systems:
          return yield* only("GET", () => Effect.succeed(document(Resources.systemCollection(id))))
        case systemPath:
          return yield* only("GET, PATCH", () =>
            method === "PATCH"
              ? patchSystem(request)
              : Effect.map(systemDocument, (body) => document(body, "GET, PATCH"))
          )
        case Resources.paths.reset(settings.systemId):
          return yield* only("POST", () => reset(request, user))
        case Resources.paths.managers:
          return yield* only("GET", () => Effect.succeed(document(Resources.managerCollection())))
        case Resources.paths.manager:
          return yield* only("GET", () => Effect.succeed(document(Resources.manager(id))))
        case Resources.paths.virtualMediaCollection:
          return yield* only("GET", () =>
            Effect.succeed(document(Resources.virtualMediaCollection()))
          )
        case Resources.paths.virtualMedia:
          return yield* only("GET", () =>
            Effect.map(machine.media(), (media) => document(Resources.virtualMedia(media)))
          )
        case Resources.paths.insertMedia:
          return yield* only("POST", () => insertMedia(request, user))
        case Resources.paths.ejectMedia:
          return yield* only("POST", () => ejectMedia(user))
        case Resources.paths.chassisCollection:
          return yield* only("GET", () => Effect.succeed(document(Resources.chassisCollection(id))))
        case Resources.paths.chassis(settings.systemId):
          return yield* only("GET", () =>
            Effect.map(machine.powerState(), (power) => document(Resources.chassis(id, power)))
          )
        case Resources.paths.sessionService:
          return yield* only("GET", () =>
            Effect.succeed(document(Resources.sessionService(sessionTimeoutSeconds)))
          )
        case Resources.paths.sessions:
          return yield* only("GET, POST", () =>
            Effect.succeed(document(Resources.sessionCollection(sessions.ids()), "GET, POST"))
          )
      }
      if (sessionMatch !== null) {
        const sessionId = sessionMatch[1] ?? ""
        const session = sessions.find(sessionId)
        if (session === undefined) return failure(404, "ResourceMissingAtURI", [path])
        return yield* only("GET, DELETE", () =>
          Effect.sync(() => {
            if (method !== "DELETE") {
              return document(Resources.session(session.id, session.userName), "GET, DELETE")
            }
            sessions.delete(sessionId)
            return reply(204)
          })
        )
      }
      return failure(404, "ResourceMissingAtURI", [path])
    })

  /** Handles one request; failures become Redfish error replies, never a failed effect. */
  return (request: RedfishRequest): Effect.Effect<RedfishReply, never, Services> =>
    Effect.gen(function* () {
      const machine = yield* MachineControl
      const path = normalizePath(request.path)
      const method = request.method
      const readOnly = method === "GET" || method === "HEAD"
      if (publicPaths.has(path)) {
        if (!readOnly) {
          return failure(405, "GeneralError", [], `${method} is not allowed on ${path}`, {
            Allow: "GET"
          })
        }
        if (path === "/redfish") return document(Resources.versionsDocument())
        if (path === Resources.paths.odata) return document(Resources.odataServiceDocument())
        if (path === Resources.paths.metadata) {
          return reply(200, Resources.metadataDocument(), {
            "Content-Type": "application/xml; charset=utf-8",
            Allow: "GET"
          })
        }
        return document(Resources.serviceRoot(identity(machine.facts)))
      }
      if (path === Resources.paths.sessions && method === "POST") return yield* login(request)

      const auth = yield* authenticate(request)
      if ("status" in auth) return auth
      return yield* route(request, path, auth.user)
    }).pipe(
      Effect.catch((error) =>
        Effect.gen(function* () {
          const detail = error instanceof Error ? error.message : String(error)
          yield* Effect.logWarning(`Redfish: ${request.method} ${request.path} failed: ${detail}`)
          return failure(500, "GeneralError", [], detail)
        })
      )
    )
}

/** The override fields of a PATCH to `Boot`, or the reply that rejects them. */
const parseBoot = (
  boot: Record<string, unknown>,
  bootMode: "UEFI" | "Legacy"
): { enabled?: BootOverrideEnabled; target?: BootTarget } | RedfishReply => {
  const result: { enabled?: BootOverrideEnabled; target?: BootTarget } = {}
  for (const [key, value] of Object.entries(boot)) {
    const property = `Boot/${key}`
    switch (key) {
      case "BootSourceOverrideEnabled":
        if (!bootOverrideModes.includes(value as BootOverrideEnabled)) {
          return failure(400, "PropertyValueNotInList", [String(value), property])
        }
        result.enabled = value as BootOverrideEnabled
        break
      case "BootSourceOverrideTarget":
        if (!bootTargets.includes(value as BootTarget)) {
          return failure(400, "PropertyValueNotInList", [String(value), property])
        }
        result.target = value as BootTarget
        break
      case "BootSourceOverrideMode":
        // The firmware is fixed for the life of the domain (BOOT_MODE).
        if (value !== bootMode) {
          return failure(
            400,
            "PropertyValueNotInList",
            [String(value), property],
            `this machine boots in ${bootMode} mode (BOOT_MODE), which Redfish cannot change`
          )
        }
        break
      default:
        return failure(400, "PropertyUnknown", [property])
    }
  }
  return result
}

export type { BootOverride }
