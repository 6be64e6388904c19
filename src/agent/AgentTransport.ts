import { existsSync } from "node:fs"
import { createConnection, type Socket } from "node:net"
import {
  Cause,
  Context,
  Data,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  Queue,
  Semaphore
} from "effect"
import { GuestExecExit } from "../domain/ExitCode.ts"
import { CommandTimedOut, Exec, renderArgv, tail } from "../process/Exec.ts"
import {
  AgentCommand,
  type AgentReply,
  ByteQueue,
  encodeCommand,
  encodeSyncDelimited,
  parseReply,
  SyncDelimiter
} from "./AgentProtocol.ts"

/**
 * Carries one guest agent command to a domain and returns the agent's `return` value. Three
 * transports exist, each as its own layer:
 *
 * - `layerVirsh`: one `virsh qemu-agent-command` process per command. Works with any libvirt URI
 *   and authentication, at the cost of a process start per command.
 * - `layerLibvirtRpc`: libvirt's own RPC protocol on libvirtd's unix socket, over one connection.
 *   libvirt still owns the agent channel, exactly as with virsh.
 * - `layerQgaSocket`: the agent's wire protocol on a chardev socket that no libvirt daemon owns
 *   (a QEMU started by hand, or a test agent). Never point it at a channel libvirt manages: the
 *   socket accepts one client, and libvirt would lose its own agent connection.
 *
 * `layerAuto` picks the RPC transport for a local URI whose socket accepts the connection and
 * falls back to virsh otherwise.
 */

export type TransportKind = "virsh" | "libvirt-rpc" | "qga-socket"

/**
 * Largest request (its JSON, in bytes) that a transport delivers to the agent.
 *
 * - virsh takes the JSON as one argument, and Linux limits one argument to 128 KiB including its
 *   terminating NUL (`MAX_ARG_STRLEN`).
 * - Through libvirtd, a 213 KB `guest-exec` request worked, while a 256 KB one got no reply
 *   and left the agent unresponsive for about a minute (libvirt 9.0, QEMU 7.2 agent, TCG
 *   guest). 192 KiB stays below what worked. The agent socket gets the same limit, because
 *   the stall may be the agent's own.
 *
 * NOTE: the 192 KiB limit is measured on one machine, not derived from a documented limit.
 */
export const maxRequestBytes = (kind: TransportKind): number =>
  kind === "virsh" ? 128 * 1024 - 1 : 192 * 1024

// ---------------------------------------------------------------------------------------------
// Errors

const agentHint =
  "Wait for the guest to boot (guest-exec --wait), and check that qemu-guest-agent is " +
  "installed and running in the guest"

/** The guest agent cannot take commands: the guest is off, still booting or has no agent. */
export class AgentNotConnected extends Data.TaggedError("AgentNotConnected")<{
  readonly domain: string
  readonly command: string
  readonly detail: string
}> {
  readonly exitCode = GuestExecExit.AgentNotConnected
  override get message(): string {
    const subject = `the guest agent of domain ${this.domain}`
    return `${subject} is not connected (${this.detail}). ${agentHint}`
  }
}

/** The agent received the command and replied with an error. */
export class AgentCommandFailed extends Data.TaggedError("AgentCommandFailed")<{
  readonly domain: string
  readonly command: string
  readonly errorClass: string
  /** The agent's own error text. */
  readonly desc: string
}> {
  readonly exitCode = GuestExecExit.Failed
  override get message(): string {
    return `the guest agent of domain ${this.domain} rejected ${this.command}: ${this.desc}`
  }
}

/** No reply came within the time allowed for one agent command. */
export class AgentTimedOut extends Data.TaggedError("AgentTimedOut")<{
  readonly domain: string
  readonly command: string
  readonly timeout: Duration.Duration
}> {
  readonly exitCode = GuestExecExit.Failed
  override get message(): string {
    return (
      `the guest agent of domain ${this.domain} did not answer ${this.command} within ` +
      `${Duration.format(this.timeout)}. The guest may be overloaded or the agent hung; ` +
      "retry, or restart qemu-guest-agent in the guest"
    )
  }
}

/** The reply did not fit in one libvirt RPC message, so libvirt dropped it. */
export class AgentReplyTooLarge extends Data.TaggedError("AgentReplyTooLarge")<{
  readonly domain: string
  readonly command: string
  readonly detail: string
}> {
  readonly exitCode = GuestExecExit.Failed
  override get message(): string {
    return (
      `libvirt could not pass the guest agent's reply to ${this.command} for domain ` +
      `${this.domain} (${this.detail}): libvirt limits one reply to 4 MiB of JSON, so a ` +
      "command's stdout and stderr together must stay under about 3 MiB. Run it again with " +
      "guest-exec --spool, which collects the output in files in the guest, or compress it"
    )
  }
}

export class DomainNotFound extends Data.TaggedError("DomainNotFound")<{
  readonly domain: string
  readonly command: string
  readonly detail: string
}> {
  readonly exitCode = GuestExecExit.Failed
  override get message(): string {
    return (
      `domain ${this.domain} not found (${this.detail}). List the domains with ` +
      "`virsh list --all` and pass the right name"
    )
  }
}

/** The reply was not what the protocol promises: invalid JSON or an unexpected shape. */
export class AgentProtocolError extends Data.TaggedError("AgentProtocolError")<{
  readonly domain: string
  readonly command: string
  readonly detail: string
}> {
  readonly exitCode = GuestExecExit.Failed
  override get message(): string {
    const subject = `the guest agent of domain ${this.domain}`
    return `invalid reply from ${subject} to ${this.command}: ${this.detail}`
  }
}

/** The way to the agent failed: virsh exited with an error, or libvirtd's socket broke. */
export class AgentTransportFailed extends Data.TaggedError("AgentTransportFailed")<{
  readonly domain: string
  readonly command: string
  readonly transport: TransportKind
  readonly detail: string
  /** The virsh command line, for the virsh transport. */
  readonly argv?: ReadonlyArray<string>
}> {
  readonly exitCode = GuestExecExit.Failed
  override get message(): string {
    const argv = this.argv === undefined ? "" : `\n  (${renderArgv(this.argv)})`
    return (
      `sending ${this.command} to the guest agent of domain ${this.domain} through ` +
      `${this.transport} failed: ${this.detail}. Check that libvirtd is running and ` +
      `reachable${argv}`
    )
  }
}

export type AgentError =
  | AgentNotConnected
  | AgentCommandFailed
  | AgentTimedOut
  | AgentReplyTooLarge
  | DomainNotFound
  | AgentProtocolError
  | AgentTransportFailed

interface CommandContext {
  readonly domain: string
  readonly command: string
}

// ---------------------------------------------------------------------------------------------
// Reading libvirt's errors

/** libvirt error codes (`virErrorNumber` in libvirt's virterror.h). */
const LibvirtErrorCode = {
  NoDomain: 42,
  OperationInvalid: 55,
  AgentUnresponsive: 86
} as const

/**
 * libvirt's texts for an agent that cannot take commands (libvirt 9): "QEMU guest agent is not
 * connected", "Guest agent is not responding: ...", and "domain is not running".
 */
const notConnectedPattern = /not connected|Guest agent is not responding|domain is not running/i
const noDomainPattern = /failed to get domain|Domain not found|no domain with matching name/i
/** libvirt wraps an error the agent replied with in this sentence. */
const agentErrorPattern = /unable to execute QEMU agent command '[^']*': ([\s\S]*)$/
/** libvirtd's RPC layer fails this way when a reply exceeds its 4 MiB string limit. */
const tooLargePattern = /Unable to encode message payload/

/** Turns a libvirt error (from virsh's stderr or an RPC error reply) into an AgentError. */
export const classifyLibvirtError = (
  context: CommandContext,
  transport: TransportKind,
  text: string,
  extra: { readonly code?: number; readonly argv?: ReadonlyArray<string> } = {}
): AgentError => {
  const detail = text
    .replace(/^error: /gm, "")
    .trim()
    .replace(/\s*\n\s*/g, "; ")
  const agentError = agentErrorPattern.exec(detail)
  if (agentError !== null) {
    return new AgentCommandFailed({ ...context, errorClass: "GenericError", desc: agentError[1]! })
  }
  if (extra.code === LibvirtErrorCode.NoDomain || noDomainPattern.test(detail)) {
    return new DomainNotFound({ ...context, detail })
  }
  if (
    extra.code === LibvirtErrorCode.AgentUnresponsive ||
    (extra.code === LibvirtErrorCode.OperationInvalid && /not running/i.test(detail)) ||
    notConnectedPattern.test(detail)
  ) {
    return new AgentNotConnected({ ...context, detail })
  }
  if (tooLargePattern.test(detail)) return new AgentReplyTooLarge({ ...context, detail })
  return new AgentTransportFailed({
    ...context,
    transport,
    detail: tail(detail, 500),
    ...(extra.argv === undefined ? {} : { argv: extra.argv })
  })
}

/** Converts one reply of the agent into its `return` value or an AgentCommandFailed. */
const replyValue = (
  context: CommandContext,
  reply: AgentReply | undefined,
  raw: string
): Effect.Effect<unknown, AgentCommandFailed | AgentProtocolError> => {
  if (reply === undefined) {
    return Effect.fail(
      new AgentProtocolError({ ...context, detail: `not a reply: ${tail(raw, 200)}` })
    )
  }
  if (reply._tag === "Error") {
    return Effect.fail(
      new AgentCommandFailed({ ...context, errorClass: reply.error.class, desc: reply.error.desc })
    )
  }
  return Effect.succeed(reply.value)
}

/**
 * Extra time a transport waits beyond the agent timeout it passes on, so that libvirt reports
 * its own timeout (with its own message) before vm-runner gives up on the call.
 */
const transportGrace = Duration.seconds(5)

/** Whole seconds for libvirt's agent timeout, which counts in seconds and needs at least 1. */
const timeoutSeconds = (timeout: Duration.Duration): number =>
  Math.max(1, Math.ceil(Duration.toSeconds(timeout)))

// ---------------------------------------------------------------------------------------------
// Unix socket connections

/** A unix stream socket closed, or could not be opened. Transports map it to an AgentError. */
class SocketFailed extends Data.TaggedError("SocketFailed")<{
  readonly path: string
  readonly detail: string
  /** True when the socket could not be opened, as opposed to breaking later. */
  readonly atOpen: boolean
}> {}

interface UnixConnection {
  readonly path: string
  readonly send: (bytes: Uint8Array) => Effect.Effect<void, SocketFailed>
  /** Appends the next chunk the peer sent to `buffer`; fails once the peer has closed. */
  readonly receiveInto: (buffer: ByteQueue) => Effect.Effect<void, SocketFailed>
  readonly close: Effect.Effect<void>
  readonly isOpen: () => boolean
}

const errorText = (error: unknown): string =>
  error instanceof Error ? error.message : String(error)

const connectUnix = (path: string): Effect.Effect<UnixConnection, SocketFailed> =>
  Effect.gen(function* () {
    const incoming = yield* Queue.unbounded<Uint8Array, SocketFailed>()
    let open = false

    const socket = yield* Effect.callback<Socket, SocketFailed>((resume) => {
      const candidate = createConnection({ path })
      const onOpenError = (error: Error) =>
        resume(Effect.fail(new SocketFailed({ path, detail: errorText(error), atOpen: true })))
      candidate.once("error", onOpenError)
      candidate.once("connect", () => {
        candidate.off("error", onOpenError)
        open = true
        resume(Effect.succeed(candidate))
      })
      return Effect.sync(() => candidate.destroy())
    })

    const closeWith = (detail: string) => {
      open = false
      Queue.failCauseUnsafe(incoming, Cause.fail(new SocketFailed({ path, detail, atOpen: false })))
    }
    socket.on("data", (chunk: Buffer) => Queue.offerUnsafe(incoming, chunk))
    socket.on("error", (error) => closeWith(errorText(error)))
    socket.on("close", () => closeWith("the peer closed the connection"))

    const send = (bytes: Uint8Array) =>
      Effect.callback<void, SocketFailed>((resume) => {
        socket.write(bytes, (error) =>
          resume(
            error == null
              ? Effect.void
              : Effect.fail(new SocketFailed({ path, detail: errorText(error), atOpen: false }))
          )
        )
      })

    return {
      path,
      send,
      receiveInto: (buffer: ByteQueue) =>
        Queue.take(incoming).pipe(Effect.map((chunk) => buffer.push(chunk))),
      close: Effect.sync(() => {
        open = false
        socket.destroy()
      }),
      isOpen: () => open
    }
  })

// ---------------------------------------------------------------------------------------------
// virsh

const makeVirshTransport = (uri: string) =>
  Effect.gen(function* () {
    const exec = yield* Exec

    const execute = Effect.fn("AgentTransport.virsh.execute")(function* (
      domain: string,
      command: string,
      args: object | undefined,
      timeout: Duration.Duration
    ) {
      const context = { domain, command }
      const request = JSON.stringify(
        args === undefined ? { execute: command } : { execute: command, arguments: args }
      )
      const requestBytes = Buffer.byteLength(request)
      if (requestBytes > maxRequestBytes("virsh")) {
        return yield* new AgentTransportFailed({
          ...context,
          transport: "virsh",
          detail:
            `the ${requestBytes}-byte request does not fit in one command-line argument ` +
            `(at most ${maxRequestBytes("virsh")} bytes on Linux)`
        })
      }
      const argv = ["virsh", "-q", "-c", uri, "qemu-agent-command", domain, request]
      argv.push("--timeout", String(timeoutSeconds(timeout)))

      const result = yield* exec
        .run(argv, { allowFailure: true, timeout: Duration.sum(timeout, transportGrace) })
        .pipe(
          Effect.mapError((error) =>
            error instanceof CommandTimedOut
              ? new AgentTimedOut({ ...context, timeout })
              : new AgentTransportFailed({
                  ...context,
                  transport: "virsh",
                  detail: error.message,
                  argv
                })
          )
        )
      if (result.exitCode !== 0) {
        return yield* classifyLibvirtError(context, "virsh", result.stderr, { argv })
      }
      const text = result.text.trim()
      return yield* replyValue(context, parseReply(text), text)
    })

    return AgentTransport.of({ kind: "virsh", execute })
  })

// ---------------------------------------------------------------------------------------------
// The agent's own wire protocol on a chardev socket

/**
 * How long to wait for an error reply to `guest-shutdown`, which sends none when it succeeds.
 * The agent rejects a request it cannot carry out at once, so a short wait catches that.
 */
const shutdownErrorWait = Duration.seconds(1)

const makeQgaSocketTransport = (path: string) =>
  Effect.gen(function* () {
    const lock = yield* Semaphore.make(1)
    let connection: UnixConnection | undefined
    const buffer = new ByteQueue()
    // Sync ids only need to differ from the ids of earlier clients on the same channel.
    let nextSyncId = Math.floor(Math.random() * 2 ** 30)

    const drop = Effect.suspend(() => {
      const current = connection
      connection = undefined
      return current === undefined ? Effect.void : current.close
    })
    yield* Effect.addFinalizer(() => drop)

    const readLine = (open: UnixConnection): Effect.Effect<string, SocketFailed> =>
      Effect.suspend(() => {
        const line = buffer.takeLine()
        if (line !== undefined) return Effect.succeed(new TextDecoder().decode(line))
        return open.receiveInto(buffer).pipe(Effect.andThen(readLine(open)))
      })

    const skipPastDelimiter = (open: UnixConnection): Effect.Effect<void, SocketFailed> =>
      Effect.suspend(() =>
        buffer.discardThrough(SyncDelimiter)
          ? Effect.void
          : open.receiveInto(buffer).pipe(Effect.andThen(skipPastDelimiter(open)))
      )

    /** Sends `guest-sync-delimited` and drops every byte up to its matching reply. */
    const synchronise = (open: UnixConnection) =>
      Effect.gen(function* () {
        const id = nextSyncId++
        yield* open.send(encodeSyncDelimited(id))
        while (true) {
          yield* skipPastDelimiter(open)
          const reply = parseReply(yield* readLine(open))
          if (reply?._tag === "Return" && reply.value === id) return
        }
      })

    const connect = (context: CommandContext) =>
      Effect.gen(function* () {
        if (connection?.isOpen()) return connection
        yield* drop
        const open = yield* connectUnix(path)
        connection = open
        buffer.take(buffer.size)
        yield* synchronise(open)
        return open
      }).pipe(
        Effect.mapError(
          (error) =>
            new AgentNotConnected({
              ...context,
              detail: error.atOpen
                ? `cannot connect to ${path}: ${error.detail}`
                : `the agent on ${path} did not synchronise: ${error.detail}`
            })
        )
      )

    const exchange = (context: CommandContext, args: object | undefined) =>
      Effect.gen(function* () {
        const open = yield* connect(context)
        yield* open
          .send(encodeCommand(context.command, args))
          .pipe(Effect.mapError((error) => toNotConnected(context, error)))
        if (context.command === AgentCommand.Shutdown) {
          // guest-shutdown replies only when it fails; success closes the channel instead.
          return yield* readLine(open).pipe(
            Effect.timeoutOption(shutdownErrorWait),
            Effect.flatMap(
              Option.match({
                onNone: () => Effect.succeed(undefined),
                onSome: (line) => replyValue(context, parseReply(line), line)
              })
            ),
            Effect.catchTag("SocketFailed", () => Effect.succeed(undefined))
          )
        }
        const line = yield* readLine(open).pipe(
          Effect.mapError((error) => toNotConnected(context, error))
        )
        return yield* replyValue(context, parseReply(line), line)
      })

    const toNotConnected = (context: CommandContext, error: SocketFailed) =>
      new AgentNotConnected({ ...context, detail: `connection to ${path} lost: ${error.detail}` })

    const execute = Effect.fn("AgentTransport.qgaSocket.execute")(function* (
      domain: string,
      command: string,
      args: object | undefined,
      timeout: Duration.Duration
    ) {
      const context = { domain, command }
      const outcome = yield* exchange(context, args).pipe(
        Effect.timeoutOption(timeout),
        // A failure, timeout or interruption can leave a partial or late reply in the stream:
        // the next command reconnects and synchronises again.
        Effect.onExit((exit) =>
          Exit.isSuccess(exit) && Option.isSome(exit.value) ? Effect.void : drop
        ),
        lock.withPermit
      )
      if (Option.isNone(outcome)) return yield* new AgentTimedOut({ ...context, timeout })
      return outcome.value
    })

    return AgentTransport.of({ kind: "qga-socket", execute })
  })

// ---------------------------------------------------------------------------------------------
// libvirt RPC (XDR over libvirtd's unix socket)

/**
 * Program and procedure numbers of libvirt's RPC protocol, from libvirt's
 * src/remote/remote_protocol.x, src/remote/qemu_protocol.x and src/rpc/virnetprotocol.x.
 */
const Rpc = {
  RemoteProgram: 0x20008086,
  QemuProgram: 0x20008087,
  Version: 1,
  ConnectOpen: 1,
  ConnectClose: 2,
  DomainLookupByName: 23,
  AuthList: 66,
  /** QEMU_PROC_DOMAIN_AGENT_COMMAND: `virDomainQemuAgentCommand`. */
  DomainAgentCommand: 3,
  Call: 0,
  Reply: 1,
  StatusOk: 0,
  StatusError: 1,
  AuthNone: 0,
  /**
   * A bound on a message's length word, to catch a corrupt stream. libvirt's own limit,
   * `VIR_NET_MESSAGE_MAX`, is 16 MiB in its virnetprotocol.x. This bound is looser, so that a
   * later rise of that limit does not break the transport.
   */
  MaxMessage: 64 * 1024 * 1024
} as const

const headerBytes = 24

/** XDR encoding (RFC 4506) of the few types libvirt's calls here need. */
class XdrWriter {
  private readonly parts: Array<Uint8Array> = []

  u32(value: number): this {
    const bytes = new Uint8Array(4)
    new DataView(bytes.buffer).setUint32(0, value >>> 0)
    this.parts.push(bytes)
    return this
  }

  i32(value: number): this {
    const bytes = new Uint8Array(4)
    new DataView(bytes.buffer).setInt32(0, value)
    this.parts.push(bytes)
    return this
  }

  /** Fixed-length opaque data, padded to a multiple of 4 bytes. */
  opaque(bytes: Uint8Array): this {
    this.parts.push(bytes)
    const padding = (4 - (bytes.length % 4)) % 4
    if (padding > 0) this.parts.push(new Uint8Array(padding))
    return this
  }

  string(value: string): this {
    const bytes = new TextEncoder().encode(value)
    return this.u32(bytes.length).opaque(bytes)
  }

  /** `remote_string`: a pointer, encoded as a presence flag and the string. */
  optionalString(value: string | undefined): this {
    return value === undefined ? this.u32(0) : this.u32(1).string(value)
  }

  raw(bytes: Uint8Array): this {
    this.parts.push(bytes)
    return this
  }

  toBytes(): Uint8Array {
    const total = this.parts.reduce((sum, part) => sum + part.length, 0)
    const out = new Uint8Array(total)
    let offset = 0
    for (const part of this.parts) {
      out.set(part, offset)
      offset += part.length
    }
    return out
  }
}

class XdrDecodeError extends Error {}

class XdrReader {
  private offset = 0
  private readonly view: DataView

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  private need(count: number): void {
    if (this.offset + count > this.bytes.length) {
      throw new XdrDecodeError(`message ends at byte ${this.bytes.length}, needed ${count} more`)
    }
  }

  u32(): number {
    this.need(4)
    const value = this.view.getUint32(this.offset)
    this.offset += 4
    return value
  }

  i32(): number {
    this.need(4)
    const value = this.view.getInt32(this.offset)
    this.offset += 4
    return value
  }

  opaque(length: number): Uint8Array {
    this.need(length)
    const value = this.bytes.subarray(this.offset, this.offset + length)
    this.offset += length + ((4 - (length % 4)) % 4)
    return value
  }

  string(): string {
    return new TextDecoder().decode(this.opaque(this.u32()))
  }

  optionalString(): string | undefined {
    return this.u32() === 0 ? undefined : this.string()
  }

  /** Copies the bytes between two offsets, for re-sending a decoded structure unchanged. */
  slice(from: number, to: number): Uint8Array {
    return this.bytes.slice(from, to)
  }

  get position(): number {
    return this.offset
  }
}

/** Frames one call: total length (including itself), header, then the XDR arguments. */
export const encodeRpcCall = (
  program: number,
  procedure: number,
  serial: number,
  payload: Uint8Array
): Uint8Array =>
  new XdrWriter()
    .u32(4 + headerBytes + payload.length)
    .u32(program)
    .u32(Rpc.Version)
    .i32(procedure)
    .i32(Rpc.Call)
    .u32(serial)
    .i32(Rpc.StatusOk)
    .raw(payload)
    .toBytes()

interface RpcReply {
  readonly program: number
  readonly procedure: number
  readonly type: number
  readonly serial: number
  readonly status: number
  readonly body: XdrReader
}

/** Reads the header of a message whose length word is already removed. */
const decodeRpcReply = (frame: Uint8Array): RpcReply => {
  const body = new XdrReader(frame)
  const program = body.u32()
  body.u32() // the program version
  const procedure = body.i32()
  const type = body.i32()
  const serial = body.u32()
  const status = body.i32()
  return { program, procedure, type, serial, status, body }
}

/** libvirt's `remote_error`, cut to the fields vm-runner shows. */
interface RpcErrorBody {
  readonly code: number
  readonly message: string
}

const decodeRpcError = (body: XdrReader): RpcErrorBody => {
  const code = body.i32()
  body.i32() // the libvirt module that raised the error
  return { code, message: body.optionalString() ?? `libvirt error code ${code}` }
}

class RpcCallFailed extends Data.TaggedError("RpcCallFailed")<RpcErrorBody> {}

/** A message from libvirtd that does not decode as the procedure's reply. */
class RpcDecodeFailed extends Data.TaggedError("RpcDecodeFailed")<{
  readonly path: string
  readonly detail: string
}> {}

const decodeXdr = <A>(path: string, decode: () => A): Effect.Effect<A, RpcDecodeFailed> =>
  Effect.try({
    try: decode,
    catch: (error) => new RpcDecodeFailed({ path, detail: errorText(error) })
  })

export interface LocalLibvirt {
  /** The URI libvirtd's `connect-open` takes: `qemu:///system` or `qemu:///session`. */
  readonly name: string
  /** Sockets to try in order: the modular QEMU daemon's first, then the monolithic libvirtd's. */
  readonly socketPaths: ReadonlyArray<string>
}

/**
 * Finds the unix sockets for a local libvirt URI, or undefined for a URI this transport cannot
 * serve (another host, another transport, another driver).
 */
export const localLibvirtSockets = (
  uri: string,
  runtimeDir = process.env.XDG_RUNTIME_DIR
): LocalLibvirt | undefined => {
  const match = /^qemu(?:\+unix)?:\/\/\/(system|session)(?:\?(.*))?$/.exec(uri)
  if (match === null) return undefined
  const [, kind, query] = match
  const name = `qemu:///${kind}`
  const socketParam = new URLSearchParams(query ?? "").get("socket")
  if (socketParam !== null) return { name, socketPaths: [socketParam] }
  const dir =
    kind === "system"
      ? "/var/run/libvirt"
      : runtimeDir === undefined
        ? undefined
        : `${runtimeDir}/libvirt`
  if (dir === undefined) return undefined
  return { name, socketPaths: [`${dir}/virtqemud-sock`, `${dir}/libvirt-sock`] }
}

/** The RPC transport could not be set up; the caller may fall back to virsh. */
export class LibvirtRpcUnavailable extends Data.TaggedError("LibvirtRpcUnavailable")<{
  readonly uri: string
  readonly detail: string
}> {
  override get message(): string {
    return `cannot talk to libvirt at ${this.uri} over its RPC socket: ${this.detail}`
  }
}

const makeLibvirtRpcTransport = (uri: string, socketPath?: string) =>
  Effect.gen(function* () {
    const local = localLibvirtSockets(uri)
    if (local === undefined) {
      return yield* new LibvirtRpcUnavailable({ uri, detail: "not a local qemu:/// URI" })
    }
    const candidates = socketPath === undefined ? local.socketPaths : [socketPath]
    const path = candidates.find((candidate) => existsSync(candidate))
    if (path === undefined) {
      return yield* new LibvirtRpcUnavailable({
        uri,
        detail: `no socket at ${candidates.join(" or ")}`
      })
    }

    const lock = yield* Semaphore.make(1)
    const buffer = new ByteQueue()
    const domains = new Map<string, Uint8Array>()
    let connection: UnixConnection | undefined
    let serial = 0

    const readFrame = (open: UnixConnection): Effect.Effect<Uint8Array, SocketFailed> =>
      Effect.suspend(() => {
        const prefix = buffer.peek(4)
        if (prefix !== undefined) {
          const length = new DataView(prefix.buffer, prefix.byteOffset).getUint32(0)
          if (length < 4 + headerBytes || length > Rpc.MaxMessage) {
            return Effect.fail(
              new SocketFailed({ path, detail: `invalid message length ${length}`, atOpen: false })
            )
          }
          const frame = buffer.take(length)
          if (frame !== undefined) return Effect.succeed(frame.subarray(4))
        }
        return open.receiveInto(buffer).pipe(Effect.andThen(readFrame(open)))
      })

    /** Sends one call and waits for the reply with its serial, skipping anything else. */
    const call = (open: UnixConnection, program: number, procedure: number, payload: Uint8Array) =>
      Effect.gen(function* () {
        serial = (serial + 1) >>> 0
        const expected = serial
        yield* open.send(encodeRpcCall(program, procedure, expected, payload))
        while (true) {
          const frame = yield* readFrame(open)
          const reply = yield* decodeXdr(path, () => decodeRpcReply(frame))
          // Skips events and replies to calls that timed out earlier. This client announces no
          // keepalive support, and libvirtd 9.0 kept its idle connection open (tested for 45 s).
          if (reply.type !== Rpc.Reply || reply.serial !== expected) continue
          if (reply.status === Rpc.StatusOk) return reply.body
          return yield* new RpcCallFailed(yield* decodeXdr(path, () => decodeRpcError(reply.body)))
        }
      })

    const openConnection = Effect.gen(function* () {
      const open = yield* connectUnix(path)
      buffer.take(buffer.size)
      const auth = yield* call(open, Rpc.RemoteProgram, Rpc.AuthList, new Uint8Array())
      const types = yield* decodeXdr(path, () =>
        Array.from({ length: auth.u32() }, () => auth.i32())
      )
      if (types.length > 0 && !types.includes(Rpc.AuthNone)) {
        yield* open.close
        return yield* new RpcCallFailed({
          code: 0,
          message: `libvirtd at ${path} requires authentication (auth types ${types.join(", ")})`
        })
      }
      yield* call(
        open,
        Rpc.RemoteProgram,
        Rpc.ConnectOpen,
        new XdrWriter().optionalString(local.name).u32(0).toBytes()
      )
      return open
    })

    const toUnavailable = (error: SocketFailed | RpcCallFailed | RpcDecodeFailed) =>
      new LibvirtRpcUnavailable({
        uri,
        detail: error._tag === "RpcCallFailed" ? error.message : `${path}: ${error.detail}`
      })

    const drop = Effect.suspend(() => {
      const current = connection
      connection = undefined
      domains.clear()
      if (current === undefined) return Effect.void
      const closeCall = call(current, Rpc.RemoteProgram, Rpc.ConnectClose, new Uint8Array())
      return closeCall.pipe(
        Effect.timeoutOption("1 second"),
        Effect.ignore,
        Effect.andThen(current.close)
      )
    })

    // Open once now, so that a socket that refuses us selects the fallback before any command.
    connection = yield* openConnection.pipe(Effect.mapError(toUnavailable))
    yield* Effect.addFinalizer(() => drop)

    const lookup = (open: UnixConnection, domain: string) =>
      Effect.gen(function* () {
        const cached = domains.get(domain)
        if (cached !== undefined) return cached
        const body = yield* call(
          open,
          Rpc.RemoteProgram,
          Rpc.DomainLookupByName,
          new XdrWriter().string(domain).toBytes()
        )
        // remote_nonnull_domain: name, 16-byte UUID, id. It is sent back unchanged.
        const encoded = yield* decodeXdr(path, () => {
          const start = body.position
          body.string()
          body.opaque(16)
          body.i32()
          return body.slice(start, body.position)
        })
        domains.set(domain, encoded)
        return encoded
      })

    const exchange = (
      context: CommandContext,
      args: object | undefined,
      timeout: Duration.Duration
    ) =>
      Effect.gen(function* () {
        const open =
          connection?.isOpen() === true ? connection : yield* Effect.andThen(drop, openConnection)
        connection = open
        const domainRef = yield* lookup(open, context.domain)
        const request = JSON.stringify(
          args === undefined
            ? { execute: context.command }
            : { execute: context.command, arguments: args }
        )
        const payload = new XdrWriter()
          .raw(domainRef)
          .string(request)
          .i32(timeoutSeconds(timeout))
          .u32(0)
          .toBytes()
        const body = yield* call(open, Rpc.QemuProgram, Rpc.DomainAgentCommand, payload)
        return yield* decodeXdr(path, () => body.optionalString() ?? "")
      })

    const execute = Effect.fn("AgentTransport.libvirtRpc.execute")(function* (
      domain: string,
      command: string,
      args: object | undefined,
      timeout: Duration.Duration
    ) {
      const context = { domain, command }
      const outcome = yield* exchange(context, args, timeout).pipe(
        Effect.catchTag("RpcCallFailed", (error) => {
          if (error.code === LibvirtErrorCode.NoDomain) domains.delete(domain)
          return Effect.fail(
            classifyLibvirtError(context, "libvirt-rpc", error.message, { code: error.code })
          )
        }),
        Effect.catchTag("SocketFailed", (error) =>
          drop.pipe(
            Effect.andThen(
              Effect.fail(
                new AgentTransportFailed({
                  ...context,
                  transport: "libvirt-rpc",
                  detail: `${path}: ${error.detail}`
                })
              )
            )
          )
        ),
        Effect.catchTag("RpcDecodeFailed", (error) =>
          drop.pipe(
            Effect.andThen(
              Effect.fail(
                new AgentProtocolError({ ...context, detail: `libvirt: ${error.detail}` })
              )
            )
          )
        ),
        Effect.timeoutOption(Duration.sum(timeout, transportGrace)),
        lock.withPermit
      )
      if (Option.isNone(outcome)) {
        yield* lock.withPermit(drop)
        return yield* new AgentTimedOut({ ...context, timeout })
      }
      return yield* replyValue(context, parseReply(outcome.value), outcome.value)
    })

    return AgentTransport.of({ kind: "libvirt-rpc", execute })
  })

// ---------------------------------------------------------------------------------------------
// The service

export class AgentTransport extends Context.Service<
  AgentTransport,
  {
    readonly kind: TransportKind
    /**
     * Sends one agent command and returns the `return` member of its reply. `timeout` bounds the
     * wait for the agent's reply; libvirt counts it in whole seconds.
     */
    execute(
      domain: string,
      command: string,
      args: object | undefined,
      timeout: Duration.Duration
    ): Effect.Effect<unknown, AgentError>
  }
>()("vm-runner/agent/AgentTransport") {
  static readonly layerVirsh = (uri: string): Layer.Layer<AgentTransport, never, Exec> =>
    Layer.effect(AgentTransport, makeVirshTransport(uri))

  /** Fails with LibvirtRpcUnavailable when the URI is not local or the socket refuses us. */
  static readonly layerLibvirtRpc = (
    uri: string,
    socketPath?: string
  ): Layer.Layer<AgentTransport, LibvirtRpcUnavailable> =>
    Layer.effect(AgentTransport, makeLibvirtRpcTransport(uri, socketPath))

  static readonly layerQgaSocket = (path: string): Layer.Layer<AgentTransport> =>
    Layer.effect(AgentTransport, makeQgaSocketTransport(path))

  /** A transport that returns what `respond` returns for every command, for tests above it. */
  static readonly layerTest = (
    respond: (
      domain: string,
      command: string,
      args: object | undefined
    ) => Effect.Effect<unknown, AgentError>,
    kind: TransportKind = "libvirt-rpc"
  ): Layer.Layer<AgentTransport> =>
    Layer.succeed(
      AgentTransport,
      AgentTransport.of({
        kind,
        execute: (domain, command, args) => respond(domain, command, args)
      })
    )

  /** The RPC transport when libvirtd accepts it, otherwise virsh; logs the choice at debug. */
  static readonly layerAuto = (uri: string): Layer.Layer<AgentTransport, never, Exec> =>
    Layer.effect(
      AgentTransport,
      makeLibvirtRpcTransport(uri).pipe(
        Effect.tap(() => Effect.logDebug(`guest agent transport: libvirt RPC for ${uri}`)),
        Effect.catchTag("LibvirtRpcUnavailable", (error) =>
          Effect.logDebug(`guest agent transport: virsh, because ${error.message}`).pipe(
            Effect.andThen(makeVirshTransport(uri))
          )
        )
      )
    )
}
