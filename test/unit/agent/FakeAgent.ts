import { closeSync, openSync, readSync } from "node:fs"
import { createServer, type Server, type Socket } from "node:net"
import { constants } from "node:os"
import { join } from "node:path"

/**
 * A stand-in for qemu-guest-agent on a unix socket in a test's own directory. It speaks the
 * agent's wire protocol: JSON lines, `guest-sync-delimited` with the 0xFF byte, and a reset on
 * an incoming 0xFF. It runs `guest-exec` commands as real host processes, so that exit codes,
 * signals, stdin and the separation of stdout and stderr are real. Pids are its own numbers,
 * never host pids, and `kill` is handled inside the fake, so that no host process outside it is
 * signalled.
 */

export interface FakeAgentOptions {
  /** Output kept per stream before `out-truncated`/`err-truncated` is set (the agent: 16 MiB). */
  readonly maxOutputBytes?: number
  /** Bytes written to each new connection first, as left over from an earlier client. */
  readonly staleOutput?: Uint8Array
  /** Commands on which the agent closes the connection instead of replying. */
  readonly disconnectOn?: ReadonlyArray<string>
  /** Commands the agent never replies to. */
  readonly ignore?: ReadonlyArray<string>
  /** Replies are written in pieces of this many bytes, to exercise reassembly. */
  readonly chunkBytes?: number
}

export interface FakeAgentRequest {
  readonly execute: string
  readonly arguments?: Record<string, unknown>
}

export interface FakeAgent {
  readonly path: string
  readonly requests: Array<FakeAgentRequest>
  /** Connections accepted so far. */
  readonly connections: () => number
  /** Pids whose jobs received a signal through `kill`, with the signal. */
  readonly signalled: Array<{ readonly pid: number; readonly signal: string }>
  readonly close: () => Promise<void>
}

interface Job {
  readonly process?: ReturnType<typeof Bun.spawn>
  result?: Record<string, unknown>
}

const signalNumber = (name: string | number | null): number | undefined =>
  name === null
    ? undefined
    : typeof name === "number"
      ? name
      : (constants.signals as Record<string, number>)[name]

const readLimited = async (stream: ReadableStream<Uint8Array>, max: number) => {
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer())
  return { kept: bytes.subarray(0, max), truncated: bytes.length > max }
}

export const startFakeAgent = async (
  dir: string,
  options: FakeAgentOptions = {}
): Promise<FakeAgent> => {
  const path = join(dir, `qga-${Math.random().toString(36).slice(2)}.sock`)
  const requests: Array<FakeAgentRequest> = []
  const signalled: Array<{ pid: number; signal: string }> = []
  const jobs = new Map<number, Job>()
  const files = new Map<number, number>()
  const sockets = new Set<Socket>()
  const maxOutput = options.maxOutputBytes ?? 16 * 1024 * 1024
  let nextPid = 4000
  let nextHandle = 1
  let connections = 0

  const send = (socket: Socket, bytes: Uint8Array) => {
    const size = options.chunkBytes ?? bytes.length
    for (let offset = 0; offset < bytes.length; offset += size) {
      socket.write(bytes.subarray(offset, offset + size))
    }
  }
  const reply = (socket: Socket, body: unknown) =>
    send(socket, new TextEncoder().encode(`${JSON.stringify(body)}\n`))
  const error = (desc: string, errorClass = "GenericError") => ({
    error: { class: errorClass, desc }
  })

  const startJob = (args: Record<string, unknown>) => {
    const path = String(args.path)
    const argv = [path, ...((args.arg as Array<string> | undefined) ?? [])]
    const pid = nextPid++
    if (path === "kill" || path.endsWith("/kill")) {
      // `kill -SIG PID`: signal the fake's own job with that pid.
      const signal = String(argv[1]).replace(/^-/, "SIG")
      const target = jobs.get(Number(argv[2]))
      target?.process?.kill(signalNumber(signal) ?? 15)
      if (target !== undefined) signalled.push({ pid: Number(argv[2]), signal })
      jobs.set(pid, { result: { exited: true, exitcode: target === undefined ? 1 : 0 } })
      return pid
    }
    const input = args["input-data"]
    const process = Bun.spawn(argv, {
      cwd: dir,
      stdin: typeof input === "string" ? Buffer.from(input, "base64") : "ignore",
      stdout: "pipe",
      stderr: "pipe"
    })
    const job: Job = { process }
    jobs.set(pid, job)
    void Promise.all([
      readLimited(process.stdout, maxOutput),
      readLimited(process.stderr, maxOutput),
      process.exited
    ]).then(([stdout, stderr]) => {
      const signal = signalNumber(process.signalCode)
      job.result = {
        exited: true,
        ...(signal === undefined ? { exitcode: process.exitCode } : { signal }),
        ...(stdout.kept.length > 0
          ? { "out-data": Buffer.from(stdout.kept).toString("base64") }
          : {}),
        ...(stderr.kept.length > 0
          ? { "err-data": Buffer.from(stderr.kept).toString("base64") }
          : {}),
        ...(stdout.truncated ? { "out-truncated": true } : {}),
        ...(stderr.truncated ? { "err-truncated": true } : {})
      }
    })
    return pid
  }

  const handle = (socket: Socket, request: FakeAgentRequest) => {
    const args = request.arguments ?? {}
    switch (request.execute) {
      case "guest-sync-delimited":
        send(socket, new Uint8Array([0xff]))
        return reply(socket, { return: args.id })
      case "guest-ping":
        return reply(socket, { return: {} })
      case "guest-info":
        return reply(socket, {
          return: {
            version: "fake-1.0",
            supported_commands: [{ name: "guest-exec", enabled: true, "success-response": true }]
          }
        })
      case "guest-exec":
        try {
          return reply(socket, { return: { pid: startJob(args) } })
        } catch (cause) {
          return reply(socket, error(`Failed to execute child process "${args.path}" (${cause})`))
        }
      case "guest-exec-status": {
        const job = jobs.get(Number(args.pid))
        if (job === undefined) return reply(socket, error("Invalid parameter 'pid'"))
        if (job.result === undefined) return reply(socket, { return: { exited: false } })
        jobs.delete(Number(args.pid))
        return reply(socket, { return: job.result })
      }
      case "guest-file-open": {
        const fd = openSync(String(args.path), "r")
        const id = nextHandle++
        files.set(id, fd)
        return reply(socket, { return: id })
      }
      case "guest-file-read": {
        const fd = files.get(Number(args.handle))
        if (fd === undefined) return reply(socket, error("Invalid parameter 'handle'"))
        const buffer = Buffer.alloc(Number(args.count ?? 4096))
        const count = readSync(fd, buffer)
        const data = buffer.subarray(0, count).toString("base64")
        return reply(socket, { return: { count, "buf-b64": data, eof: count === 0 } })
      }
      case "guest-file-close": {
        const fd = files.get(Number(args.handle))
        if (fd !== undefined) closeSync(fd)
        files.delete(Number(args.handle))
        return reply(socket, { return: {} })
      }
      case "guest-shutdown":
        // The guest powers off: no reply, the channel closes.
        return socket.destroy()
      default:
        return reply(
          socket,
          error(`The command ${request.execute} has not been found`, "CommandNotFound")
        )
    }
  }

  const onConnection = (socket: Socket) => {
    connections++
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => sockets.delete(socket))
    if (options.staleOutput !== undefined) send(socket, options.staleOutput)
    let pending = Buffer.alloc(0)
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      // 0xFF never occurs in JSON, so the agent drops everything it buffered up to it.
      const reset = pending.lastIndexOf(0xff)
      if (reset !== -1) pending = pending.subarray(reset + 1)
      let newline = pending.indexOf(0x0a)
      while (newline !== -1) {
        const line = pending.subarray(0, newline).toString("utf8")
        pending = pending.subarray(newline + 1)
        newline = pending.indexOf(0x0a)
        let request: FakeAgentRequest
        try {
          request = JSON.parse(line)
        } catch {
          reply(socket, error("JSON parse error"))
          continue
        }
        requests.push(request)
        if (options.disconnectOn?.includes(request.execute)) {
          socket.destroy()
          return
        }
        if (options.ignore?.includes(request.execute)) continue
        handle(socket, request)
      }
    })
  }

  const server: Server = createServer(onConnection)
  await new Promise<void>((resolve) => server.listen(path, resolve))

  return {
    path,
    requests,
    connections: () => connections,
    signalled,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      for (const job of jobs.values()) job.process?.kill(9)
      for (const fd of files.values()) closeSync(fd)
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
