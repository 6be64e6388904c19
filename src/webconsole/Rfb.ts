/**
 * The parts of the RFB protocol (RFC 6143, "The Remote Framebuffer Protocol", version 3.8)
 * that the web console's proxy speaks itself: the version and security handshakes. Everything
 * after them, from ClientInit on, passes through unchanged.
 */
import { createCipheriv } from "node:crypto"
import { vncPasswordPrefix } from "../config/areas/Services.ts"

export const rfbVersion = "RFB 003.008\n"

/** Security types of RFC 6143 section 7.1.2 that the proxy uses. */
export const SecurityType = { None: 1, VncAuthentication: 2 } as const

/** VNC authentication encrypts with DES, whose key is 8 bytes. */
export const vncPasswordBytes = 8

/**
 * Derives the DES key of VNC authentication: the password's VNC prefix (at most 8 bytes of
 * UTF-8, as libvirt stores it), zero-padded, with the bits of each byte mirrored. RFC 6143
 * (section 7.2.2) leaves the key unspecified. Every VNC server and client mirrors the bits,
 * as the original VNC code did.
 */
export const vncAuthKey = (password: string): Buffer => {
  const key = Buffer.alloc(vncPasswordBytes)
  Buffer.from(vncPasswordPrefix(password), "utf8").copy(key, 0, 0, vncPasswordBytes)
  for (let i = 0; i < key.length; i++) {
    let byte = key[i] ?? 0
    let mirrored = 0
    for (let bit = 0; bit < 8; bit++) {
      mirrored = (mirrored << 1) | (byte & 1)
      byte >>= 1
    }
    key[i] = mirrored
  }
  return key
}

/** Computes the 16-byte response to a VNC authentication challenge (DES-ECB). */
export const vncAuthResponse = (password: string, challenge: Uint8Array): Buffer => {
  const cipher = createCipheriv("des-ecb", vncAuthKey(password), null)
  cipher.setAutoPadding(false)
  return Buffer.concat([cipher.update(challenge), cipher.final()])
}

/** A byte stream the handshakes read from and write to. */
export interface RfbStream {
  /** Resolves with exactly `length` bytes; rejects when the stream closes first. */
  read(length: number): Promise<Buffer>
  write(bytes: Uint8Array): void
}

export class RfbHandshakeError extends Error {
  override readonly name = "RfbHandshakeError"
}

const u32 = (value: number): Buffer => {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value)
  return bytes
}

/** Reads a reason string: a 32-bit length, then that many bytes (RFC 6143 section 7.1.2). */
const readReason = async (stream: RfbStream): Promise<string> => {
  const length = (await stream.read(4)).readUInt32BE()
  return (await stream.read(Math.min(length, 4096))).toString("utf8")
}

/**
 * Runs the client side of the handshake against a VNC server up to a successful
 * SecurityResult: version 3.8, then VNC authentication with `password` when the server asks
 * for it, or no authentication when the server offers that.
 */
export const authenticateToServer = async (
  server: RfbStream,
  password: string | undefined
): Promise<void> => {
  const version = (await server.read(rfbVersion.length)).toString("latin1")
  const match = /^RFB (\d{3})\.(\d{3})\n$/.exec(version)
  if (match === null || Number(match[1]) !== 3 || Number(match[2]) < 8) {
    throw new RfbHandshakeError(`the VNC server speaks ${JSON.stringify(version)}, not RFB 3.8`)
  }
  server.write(Buffer.from(rfbVersion, "latin1"))

  const count = (await server.read(1))[0] ?? 0
  if (count === 0) {
    throw new RfbHandshakeError(
      `the VNC server refused the connection: ${await readReason(server)}`
    )
  }
  const types = [...(await server.read(count))]
  if (password !== undefined && types.includes(SecurityType.VncAuthentication)) {
    server.write(Buffer.of(SecurityType.VncAuthentication))
    const challenge = await server.read(16)
    server.write(vncAuthResponse(password, challenge))
  } else if (types.includes(SecurityType.None)) {
    server.write(Buffer.of(SecurityType.None))
  } else {
    throw new RfbHandshakeError(
      `the VNC server offers security types ${types.join(", ")}; ` +
        (password === undefined ? "it wants a password, and none is set" : "none of them is 1 or 2")
    )
  }

  const result = (await server.read(4)).readUInt32BE()
  if (result !== 0) {
    throw new RfbHandshakeError(`the VNC server rejected the password: ${await readReason(server)}`)
  }
}

/**
 * Runs the server side of the handshake with a browser that the web console already
 * authenticated: version 3.8 and security type None. With `failure`, offers no security type
 * and sends `failure` as the reason instead, which noVNC shows to the user.
 */
export const acceptClient = async (client: RfbStream, failure?: string): Promise<boolean> => {
  client.write(Buffer.from(rfbVersion, "latin1"))
  const version = (await client.read(rfbVersion.length)).toString("latin1")
  if (version !== rfbVersion) {
    throw new RfbHandshakeError(`the browser speaks ${JSON.stringify(version)}, not RFB 3.8`)
  }
  if (failure !== undefined) {
    const reason = Buffer.from(failure, "utf8")
    client.write(Buffer.concat([Buffer.of(0), u32(reason.length), reason]))
    return false
  }
  client.write(Buffer.of(1, SecurityType.None))
  const chosen = (await client.read(1))[0]
  if (chosen !== SecurityType.None) {
    throw new RfbHandshakeError(`the browser chose security type ${chosen}, which was not offered`)
  }
  client.write(u32(0))
  return true
}
