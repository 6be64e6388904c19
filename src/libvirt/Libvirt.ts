import { Context, Data, Effect, Layer } from "effect"
import { ExitCode } from "../domain/ExitCode.ts"
import { CommandFailed, Exec, type ExecOptions, renderArgv } from "../process/Exec.ts"

/** States `virsh domstate` prints, plus `undefined` for a domain that does not exist. */
export type DomainState =
  | "running"
  | "paused"
  | "shut off"
  | "shutdown"
  | "crashed"
  | "pmsuspended"
  | "in shutdown"
  | "idle"
  | "blocked"
  | "no state"

export class LibvirtError extends Data.TaggedError("LibvirtError")<{
  readonly operation: string
  readonly domain: string | undefined
  readonly argv: ReadonlyArray<string>
  readonly detail: string
}> {
  readonly exitCode = ExitCode.Libvirt
  override get message(): string {
    const subject = this.domain === undefined ? "" : ` of domain ${this.domain}`
    return `libvirt failed to ${this.operation}${subject}: ${this.detail}\n  (${renderArgv(this.argv)})`
  }
}

/** libvirt's wording for a domain that does not exist (virsh, libvirt 9 to 11). */
const noDomainPattern = /failed to get domain|Domain not found|no domain with matching name/i

/**
 * The libvirt operations vm-runner needs, through `virsh` so that the connection URI,
 * authentication and error texts are libvirt's own.
 */
export class Libvirt extends Context.Service<
  Libvirt,
  {
    readonly uri: string
    /** Runs `virsh -c URI ARGS` and returns stdout; failures become LibvirtError. */
    virsh(
      operation: string,
      domain: string | undefined,
      args: ReadonlyArray<string>,
      options?: ExecOptions
    ): Effect.Effect<string, LibvirtError>
    /** True when libvirtd answers at the URI. */
    ping(): Effect.Effect<boolean>
    state(domain: string): Effect.Effect<DomainState | undefined, LibvirtError>
    define(xmlPath: string, domain: string): Effect.Effect<void, LibvirtError>
    /** Removes the definition and keeps the VM's NVRAM and TPM state, which live in its directory. */
    undefine(domain: string): Effect.Effect<void, LibvirtError>
    start(domain: string): Effect.Effect<void, LibvirtError>
    /** Asks the guest to power off: `acpi` sends the power button, `agent` uses the guest agent. */
    shutdown(domain: string, mode: "acpi" | "agent"): Effect.Effect<void, LibvirtError>
    destroy(domain: string): Effect.Effect<void, LibvirtError>
    dumpXml(domain: string): Effect.Effect<string, LibvirtError>
    capabilities(): Effect.Effect<string, LibvirtError>
    domainCapabilities(
      arch: string,
      machine: string,
      virtType: string
    ): Effect.Effect<string, LibvirtError>
  }
>()("vm-runner/libvirt/Libvirt") {
  static readonly layer = (uri: string) =>
    Layer.effect(
      Libvirt,
      Effect.gen(function* () {
        const exec = yield* Exec

        const virsh = Effect.fn("Libvirt.virsh")(function* (
          operation: string,
          domain: string | undefined,
          args: ReadonlyArray<string>,
          options: ExecOptions = {}
        ) {
          const argv = ["virsh", "-q", "-c", uri, ...args]
          const result = yield* exec
            .run(argv, { timeout: "60 seconds", failureExitCode: ExitCode.Libvirt, ...options })
            .pipe(
              Effect.mapError(
                (error) =>
                  new LibvirtError({
                    operation,
                    domain,
                    argv,
                    detail:
                      error instanceof CommandFailed
                        ? error.stderr.replace(/^error: /gm, "").trim()
                        : error.message
                  })
              )
            )
          return result.text
        })

        const state = Effect.fn("Libvirt.state")(function* (domain: string) {
          const result = yield* virsh("read the state", domain, ["domstate", domain]).pipe(
            Effect.map((text) => text.trim() as DomainState),
            Effect.catchIf(
              (error) => noDomainPattern.test(error.detail),
              () => Effect.succeed(undefined)
            )
          )
          return result
        })

        return Libvirt.of({
          uri,
          virsh,
          ping: () =>
            // libvirtd can take several seconds to answer while it reconnects to running domains.
            virsh("connect", undefined, ["uri"], { timeout: "30 seconds" }).pipe(
              Effect.as(true),
              Effect.orElseSucceed(() => false)
            ),
          state,
          define: (xmlPath, domain) =>
            virsh("define", domain, ["define", xmlPath]).pipe(Effect.asVoid),
          undefine: (domain) =>
            virsh("undefine", domain, ["undefine", domain, "--keep-nvram", "--keep-tpm"]).pipe(
              Effect.asVoid
            ),
          start: (domain) => virsh("start", domain, ["start", domain]).pipe(Effect.asVoid),
          shutdown: (domain, mode) =>
            virsh("shut down", domain, ["shutdown", domain, "--mode", mode]).pipe(Effect.asVoid),
          destroy: (domain) => virsh("stop", domain, ["destroy", domain]).pipe(Effect.asVoid),
          dumpXml: (domain) => virsh("read the XML", domain, ["dumpxml", domain]),
          capabilities: () => virsh("read capabilities", undefined, ["capabilities"]),
          domainCapabilities: (arch, machine, virtType) =>
            virsh("read domain capabilities", undefined, [
              "domcapabilities",
              "--arch",
              arch,
              "--machine",
              machine,
              "--virttype",
              virtType
            ])
        })
      })
    )
}
