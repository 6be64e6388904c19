import { createServer, type Server, type Socket } from "node:net"
import { join } from "node:path"

/**
 * A stand-in for libvirtd's RPC socket that serves the calls the RPC transport makes: auth list,
 * connect open and close, domain lookup by name, and the QEMU program's agent command. Its XDR
 * code is written separately from the transport's, so that the two check each other.
 */

export const RemoteProgram = 0x20008086
export const QemuProgram = 0x20008087

export interface AgentCall {
  readonly domain: string
  readonly request: string
  readonly timeout: number
}

export type AgentAnswer =
  | { readonly reply: string }
  | { readonly error: { readonly code: number; readonly message: string } }
  /** Closes the client's connection instead of replying. */
  | { readonly drop: true }

export interface FakeLibvirtdOptions {
  /** Auth types `auth-list` returns; 0 is "none". */
  readonly authTypes?: ReadonlyArray<number>
  readonly domains: ReadonlyArray<string>
  readonly agent: (call: AgentCall) => AgentAnswer | undefined
  /** Sends an event message and a reply with a wrong serial before each agent reply. */
  readonly noise?: boolean
  /** Writes replies in pieces of this many bytes. */
  readonly chunkBytes?: number
}

export interface FakeLibvirtd {
  readonly path: string
  /** `program:procedure` of every call, in order. */
  readonly calls: Array<string>
  /** Connections accepted so far. */
  readonly connections: () => number
  readonly openedNames: Array<string | undefined>
  readonly agentCalls: Array<AgentCall>
  readonly close: () => Promise<void>
}

class Writer {
  private readonly bytes: Array<number> = []
  u32(value: number) {
    this.bytes.push(
      (value >>> 24) & 0xff,
      (value >>> 16) & 0xff,
      (value >>> 8) & 0xff,
      value & 0xff
    )
    return this
  }
  string(value: string) {
    const data = Buffer.from(value, "utf8")
    this.u32(data.length)
    this.bytes.push(...data)
    while (this.bytes.length % 4 !== 0) this.bytes.push(0)
    return this
  }
  fixed(data: Uint8Array) {
    this.bytes.push(...data)
    return this
  }
  toBuffer() {
    return Buffer.from(this.bytes)
  }
}

class Reader {
  offset = 0
  constructor(private readonly data: Buffer) {}
  u32() {
    const value = this.data.readUInt32BE(this.offset)
    this.offset += 4
    return value
  }
  i32() {
    const value = this.data.readInt32BE(this.offset)
    this.offset += 4
    return value
  }
  string() {
    const length = this.u32()
    const value = this.data.subarray(this.offset, this.offset + length).toString("utf8")
    this.offset += length + ((4 - (length % 4)) % 4)
    return value
  }
  fixed(length: number) {
    const value = this.data.subarray(this.offset, this.offset + length)
    this.offset += length
    return value
  }
}

const uuidOf = (name: string) => {
  const uuid = Buffer.alloc(16)
  uuid.write(name.padEnd(16, "-").slice(0, 16))
  return uuid
}

const errorPayload = (code: number, message: string) =>
  new Writer()
    .u32(code)
    .u32(10) // VIR_FROM_QEMU
    .u32(1)
    .string(message)
    .u32(2) // VIR_ERR_ERROR
    .u32(0) // dom
    .u32(0) // str1
    .u32(0) // str2
    .u32(0) // str3
    .u32(0) // int1
    .u32(0) // int2
    .u32(0) // net
    .toBuffer()

export const startFakeLibvirtd = async (
  dir: string,
  options: FakeLibvirtdOptions
): Promise<FakeLibvirtd> => {
  const path = join(dir, `libvirt-${Math.random().toString(36).slice(2)}.sock`)
  const calls: Array<string> = []
  const openedNames: Array<string | undefined> = []
  const agentCalls: Array<AgentCall> = []
  const sockets = new Set<Socket>()

  const frame = (
    program: number,
    procedure: number,
    type: number,
    serial: number,
    status: number,
    payload: Buffer
  ) =>
    Buffer.concat([
      new Writer()
        .u32(28 + payload.length)
        .u32(program)
        .u32(1)
        .u32(procedure)
        .u32(type)
        .u32(serial)
        .u32(status)
        .toBuffer(),
      payload
    ])

  const send = (socket: Socket, bytes: Buffer) => {
    const size = options.chunkBytes ?? bytes.length
    for (let offset = 0; offset < bytes.length; offset += size) {
      socket.write(bytes.subarray(offset, offset + size))
    }
  }

  const answer = (program: number, procedure: number, body: Reader): [number, Buffer] => {
    if (program === RemoteProgram && procedure === 66) {
      const types = options.authTypes ?? [0]
      const writer = new Writer().u32(types.length)
      for (const type of types) writer.u32(type)
      return [0, writer.toBuffer()]
    }
    if (program === RemoteProgram && procedure === 1) {
      openedNames.push(body.u32() === 1 ? body.string() : undefined)
      return [0, Buffer.alloc(0)]
    }
    if (program === RemoteProgram && procedure === 2) return [0, Buffer.alloc(0)]
    if (program === RemoteProgram && procedure === 23) {
      const name = body.string()
      if (!options.domains.includes(name)) {
        return [1, errorPayload(42, `Domain not found: no domain with matching name '${name}'`)]
      }
      const id = options.domains.indexOf(name) + 1
      return [0, new Writer().string(name).fixed(uuidOf(name)).u32(id).toBuffer()]
    }
    if (program === QemuProgram && procedure === 3) {
      const domain = body.string()
      const uuid = body.fixed(16)
      body.i32()
      if (!uuid.equals(uuidOf(domain))) return [1, errorPayload(1, "internal error: bad UUID")]
      const call = { domain, request: body.string(), timeout: body.i32() }
      agentCalls.push(call)
      const result = options.agent(call)
      if (result === undefined) return [-1, Buffer.alloc(0)]
      if ("drop" in result) return [-2, Buffer.alloc(0)]
      if ("error" in result) return [1, errorPayload(result.error.code, result.error.message)]
      return [0, new Writer().u32(1).string(result.reply).toBuffer()]
    }
    return [1, errorPayload(1, `unknown procedure ${program.toString(16)}:${procedure}`)]
  }

  let connections = 0
  const onConnection = (socket: Socket) => {
    connections++
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => sockets.delete(socket))
    let pending = Buffer.alloc(0)
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      while (pending.length >= 4 && pending.length >= pending.readUInt32BE(0)) {
        const length = pending.readUInt32BE(0)
        const body = new Reader(pending.subarray(4, length))
        pending = pending.subarray(length)
        const program = body.u32()
        body.u32()
        const procedure = body.u32()
        body.u32()
        const serial = body.u32()
        body.u32()
        calls.push(`${program.toString(16)}:${procedure}`)
        const [status, payload] = answer(program, procedure, body)
        if (status === -1) continue
        if (status === -2) {
          socket.destroy()
          return
        }
        if (options.noise === true && program === QemuProgram) {
          send(socket, frame(RemoteProgram, 107, 2, 0, 0, Buffer.from([0, 0, 0, 0])))
          send(
            socket,
            frame(program, procedure, 1, serial + 1000, 0, new Writer().u32(0).toBuffer())
          )
        }
        send(socket, frame(program, procedure, 1, serial, status, payload))
      }
    })
  }

  const server: Server = createServer(onConnection)
  await new Promise<void>((resolve) => server.listen(path, resolve))
  return {
    path,
    calls,
    connections: () => connections,
    openedNames,
    agentCalls,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
