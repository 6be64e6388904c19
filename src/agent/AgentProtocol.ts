import { Schema } from "effect"

/**
 * The QEMU guest agent (QGA) protocol: command names, the arguments and replies vm-runner uses,
 * and the framing of the agent's wire protocol (one JSON object per line, with
 * `guest-sync-delimited` to resynchronise a stream).
 */

/** QGA command names, as the agent spells them. */
export const AgentCommand = {
  /** Resynchronises the stream: the reply is preceded by a 0xFF byte. */
  SyncDelimited: "guest-sync-delimited",
  Ping: "guest-ping",
  Info: "guest-info",
  Exec: "guest-exec",
  ExecStatus: "guest-exec-status",
  /** Sends no reply when it succeeds, because the guest powers off. */
  Shutdown: "guest-shutdown",
  FileOpen: "guest-file-open",
  FileRead: "guest-file-read",
  FileClose: "guest-file-close"
} as const

export type AgentCommand = (typeof AgentCommand)[keyof typeof AgentCommand]

/**
 * The byte the agent writes before its reply to `guest-sync-delimited`. It never occurs in JSON,
 * so a client discards everything before it. Sent to the agent, it resets the agent's parser.
 */
export const SyncDelimiter = 0xff

/**
 * Output the agent keeps for each stream of a `guest-exec` command (`GUEST_EXEC_MAX_OUTPUT` in
 * QEMU's qga/commands.c). It drops the rest and sets `out-truncated` or `err-truncated`.
 */
export const AgentMaxOutputBytes = 16 * 1024 * 1024

// ---------------------------------------------------------------------------------------------
// Arguments

export interface GuestExecArguments {
  readonly path: string
  readonly arg?: ReadonlyArray<string>
  readonly env?: ReadonlyArray<string>
  /** Standard input for the command, base64. The agent closes the command's stdin after it. */
  readonly "input-data"?: string
  readonly "capture-output"?: boolean
}

export interface GuestExecStatusArguments {
  readonly pid: number
}

export type GuestShutdownMode = "powerdown" | "halt" | "reboot"

export interface GuestShutdownArguments {
  readonly mode?: GuestShutdownMode
}

export interface GuestFileOpenArguments {
  readonly path: string
  readonly mode?: string
}

export interface GuestFileReadArguments {
  readonly handle: number
  /** Bytes to read; the agent's default is 4 KiB. */
  readonly count?: number
}

export interface GuestFileCloseArguments {
  readonly handle: number
}

export interface GuestSyncArguments {
  readonly id: number
}

// ---------------------------------------------------------------------------------------------
// Replies (the value of `return`)

export const GuestExecReply = Schema.Struct({ pid: Schema.Number })
export type GuestExecReply = typeof GuestExecReply.Type

/**
 * The reply to `guest-exec-status`. Output arrives only with `exited: true`, all at once. A
 * command killed by a signal has `signal` and no `exitcode`. After one reply with
 * `exited: true` the agent drops the pid, and a second query fails with "Invalid parameter 'pid'".
 */
export const GuestExecStatusReply = Schema.Struct({
  exited: Schema.Boolean,
  exitcode: Schema.optionalKey(Schema.Number),
  signal: Schema.optionalKey(Schema.Number),
  "out-data": Schema.optionalKey(Schema.String),
  "err-data": Schema.optionalKey(Schema.String),
  "out-truncated": Schema.optionalKey(Schema.Boolean),
  "err-truncated": Schema.optionalKey(Schema.Boolean)
})
export type GuestExecStatusReply = typeof GuestExecStatusReply.Type

export const GuestFileOpenReply = Schema.Number
export const GuestFileReadReply = Schema.Struct({
  count: Schema.Number,
  "buf-b64": Schema.String,
  eof: Schema.Boolean
})
export type GuestFileReadReply = typeof GuestFileReadReply.Type

export const GuestInfoReply = Schema.Struct({
  version: Schema.String,
  supported_commands: Schema.Array(
    Schema.Struct({
      name: Schema.String,
      enabled: Schema.Boolean,
      "success-response": Schema.optionalKey(Schema.Boolean)
    })
  )
})
export type GuestInfoReply = typeof GuestInfoReply.Type

/** The `error` member of a failed reply, as QMP defines it. */
export interface AgentErrorReply {
  readonly class: string
  readonly desc: string
}

export type AgentReply =
  | { readonly _tag: "Return"; readonly value: unknown }
  | { readonly _tag: "Error"; readonly error: AgentErrorReply }

// ---------------------------------------------------------------------------------------------
// Wire encoding

const textEncoder = new TextEncoder()

/** Serialises one command as the agent reads it: a JSON object followed by a newline. */
export const encodeCommand = (command: string, args?: object): Uint8Array => {
  const request = args === undefined ? { execute: command } : { execute: command, arguments: args }
  return textEncoder.encode(`${JSON.stringify(request)}\n`)
}

/**
 * Serialises `guest-sync-delimited`, preceded by the delimiter byte that makes the agent drop
 * any partial command an earlier client left in its input.
 */
export const encodeSyncDelimited = (id: number): Uint8Array => {
  const command = encodeCommand(AgentCommand.SyncDelimited, { id } satisfies GuestSyncArguments)
  const bytes = new Uint8Array(command.length + 1)
  bytes[0] = SyncDelimiter
  bytes.set(command, 1)
  return bytes
}

/** Reads one reply line: `{"return": ...}` or `{"error": {"class", "desc"}}`. */
export const parseReply = (line: string): AgentReply | undefined => {
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof parsed !== "object" || parsed === null) return undefined
  if ("return" in parsed) return { _tag: "Return", value: parsed.return }
  if ("error" in parsed && typeof parsed.error === "object" && parsed.error !== null) {
    const error = parsed.error as Record<string, unknown>
    return {
      _tag: "Error",
      error: {
        class: typeof error.class === "string" ? error.class : "GenericError",
        desc: typeof error.desc === "string" ? error.desc : JSON.stringify(error)
      }
    }
  }
  return undefined
}

/**
 * An input buffer for a byte stream that arrives in chunks. It finds a delimiter without copying
 * earlier chunks again, so a reply of many megabytes costs one concatenation.
 */
export class ByteQueue {
  private chunks: Array<Uint8Array> = []
  private length = 0
  /** Bytes at the front already searched for a newline without success. */
  private scanned = 0

  get size(): number {
    return this.length
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.length += chunk.length
  }

  /** Removes and returns the first `count` bytes, or undefined when fewer are buffered. */
  take(count: number): Uint8Array | undefined {
    if (count > this.length) return undefined
    const out = new Uint8Array(count)
    let filled = 0
    while (filled < count) {
      const chunk = this.chunks[0]!
      const needed = count - filled
      if (chunk.length <= needed) {
        out.set(chunk, filled)
        filled += chunk.length
        this.chunks.shift()
      } else {
        out.set(chunk.subarray(0, needed), filled)
        this.chunks[0] = chunk.subarray(needed)
        filled = count
      }
    }
    this.length -= count
    this.scanned = Math.max(0, this.scanned - count)
    return out
  }

  /** Looks at the first `count` bytes without removing them. */
  peek(count: number): Uint8Array | undefined {
    if (count > this.length) return undefined
    const bytes = this.take(count)!
    this.chunks.unshift(bytes)
    this.length += count
    return bytes
  }

  private indexOf(byte: number, from: number): number {
    let offset = 0
    for (const chunk of this.chunks) {
      if (from < offset + chunk.length) {
        const found = chunk.indexOf(byte, Math.max(0, from - offset))
        if (found !== -1) return offset + found
      }
      offset += chunk.length
    }
    return -1
  }

  /** Removes and returns one line without its newline, or undefined when no line is complete. */
  takeLine(): Uint8Array | undefined {
    const end = this.indexOf(0x0a, this.scanned)
    if (end === -1) {
      this.scanned = this.length
      return undefined
    }
    const line = this.take(end + 1)!
    this.scanned = 0
    return line.subarray(0, end)
  }

  /** Drops bytes up to and including the next `byte`; returns false if it is not buffered yet. */
  discardThrough(byte: number): boolean {
    const at = this.indexOf(byte, 0)
    if (at === -1) {
      this.chunks = []
      this.length = 0
      this.scanned = 0
      return false
    }
    this.take(at + 1)
    this.scanned = 0
    return true
  }
}
