import { Cause, Data, Effect } from "effect"
import packageJson from "../../package.json"
import type { ImageCache } from "../images/ImageCache.ts"
import { MachineControl } from "../runtime/MachineControl.ts"
import type { LaunchPlan } from "../runtime/Plan.ts"
import { type ServerCertificate, serverCertificate } from "../webconsole/Certificate.ts"
import { FailureLimiter } from "../webconsole/LoginGuard.ts"
import { makeRedfishHandler, type RedfishReply } from "./Handler.ts"
import { SessionStore } from "./Sessions.ts"

export class RedfishError extends Data.TaggedError("RedfishError")<{
  readonly port: number
  readonly detail: string
}> {
  override get message(): string {
    return `the Redfish service cannot listen on port ${this.port}: ${this.detail}`
  }
}

/**
 * Seconds a connection may stay silent. InsertMedia responds only once the image is
 * downloaded, so this is Bun's maximum rather than its default of 10.
 */
const idleTimeoutSeconds = 255

/** Request bodies are small JSON documents; anything larger is a mistake or an attack. */
const maxRequestBodyBytes = 64 * 1024

const toResponse = (request: Request, result: RedfishReply): Response => {
  const headers = new Headers({ "OData-Version": "4.0", "Cache-Control": "no-store" })
  // Bun closes the connection after the response when the client asked for that, but does
  // not say so. Clients such as Python's http.client then reuse the closing connection and
  // fail with "Remote end closed connection without response".
  if (/\bclose\b/i.test(request.headers.get("connection") ?? "")) headers.set("Connection", "close")
  for (const [name, value] of Object.entries(result.headers)) headers.set(name, value)
  let body: string | null = null
  if (typeof result.body === "string") {
    body = result.body
  } else if (result.body !== undefined) {
    headers.set("Content-Type", "application/json; charset=utf-8")
    body = JSON.stringify(result.body, null, 2)
  }
  return new Response(request.method === "HEAD" ? null : body, { status: result.status, headers })
}

/**
 * Serves Redfish over HTTPS on `port` until interrupted, answering for the machine behind
 * MachineControl.
 */
export const serveRedfish = Effect.fn("Redfish.serve")(function* (
  plan: LaunchPlan,
  certificate: ServerCertificate
) {
  const { redfish } = plan.config
  const handle = makeRedfishHandler(
    {
      systemId: redfish.systemId,
      username: redfish.username,
      password: redfish.password,
      version: packageJson.version,
      downloadAttempts: plan.config.runtime.downloadRetries
    },
    new SessionStore(),
    new FailureLimiter()
  )
  const services = yield* Effect.context<MachineControl | ImageCache>()
  const run = Effect.runPromiseWith(services)

  const fetch = async (request: Request): Promise<Response> => {
    const url = new URL(request.url)
    const body = await request.text()
    const startedAt = performance.now()
    const result = await run(
      handle({
        method: request.method,
        path: url.pathname,
        header: (name) => request.headers.get(name),
        body
      }).pipe(
        Effect.tap((answer) =>
          // Never the headers or body: they carry passwords and session tokens.
          Effect.logDebug(
            `Redfish: ${request.method} ${url.pathname} ${answer.status} ` +
              `(${Math.round(performance.now() - startedAt)} ms)`
          )
        ),
        Effect.catchCause((cause) =>
          Effect.logError(
            `Redfish: internal error on ${request.method} ${url.pathname}`,
            cause
          ).pipe(
            Effect.as({
              status: 500,
              headers: {},
              body: { error: { code: "Base.1.8.1.InternalError", message: Cause.pretty(cause) } }
            } satisfies RedfishReply)
          )
        )
      )
    )
    return toResponse(request, result)
  }

  const server = yield* Effect.acquireRelease(
    Effect.try({
      try: () =>
        Bun.serve({
          hostname: "0.0.0.0",
          port: redfish.port,
          tls: { cert: certificate.cert, key: certificate.key },
          idleTimeout: idleTimeoutSeconds,
          maxRequestBodySize: maxRequestBodyBytes,
          fetch
        }),
      catch: (cause) => new RedfishError({ port: redfish.port, detail: String(cause) })
    }),
    (server) => Effect.promise(() => server.stop(true))
  )
  yield* Effect.logInfo(
    `Redfish service at https://localhost:${server.port}/redfish/v1/ ` +
      `(system ${redfish.systemId}, user ${redfish.username})`
  )
  return yield* Effect.never
})

/**
 * The Redfish service of this run, for the launcher to fork once the domain has started.
 * Its failures are logged; they never end the run.
 */
export const redfishService = (plan: LaunchPlan) =>
  Effect.gen(function* () {
    const certificate = yield* serverCertificate(
      plan.config.graphics,
      plan.layout.certsDir,
      "Redfish"
    )
    yield* serveRedfish(plan, certificate).pipe(Effect.provide(MachineControl.layer(plan)))
  }).pipe(
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause)
        ? Effect.interrupt
        : Effect.logError("the Redfish service stopped; the guest keeps running", cause)
    ),
    Effect.scoped,
    Effect.annotateLogs({ service: "redfish" })
  )
