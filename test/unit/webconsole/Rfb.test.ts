import { describe, expect, test } from "bun:test"
import { spawnSync } from "bun"
import { ByteQueue } from "../../../src/webconsole/ByteQueue.ts"
import {
  acceptClient,
  authenticateToServer,
  type RfbStream,
  rfbVersion,
  SecurityType,
  vncAuthKey,
  vncAuthResponse
} from "../../../src/webconsole/Rfb.ts"

/** DES-ECB by the openssl CLI, an implementation independent of the one under test. */
const opensslDes = (key: Buffer, data: Buffer): Buffer => {
  const result = spawnSync(
    [
      "openssl",
      "enc",
      "-des-ecb",
      "-nopad",
      "-provider",
      "legacy",
      "-provider",
      "default",
      "-K",
      key.toString("hex")
    ],
    { stdin: data }
  )
  if (result.exitCode !== 0) throw new Error(result.stderr.toString())
  return Buffer.from(result.stdout)
}

/** One end of a scripted peer: what the code under test writes, and bytes fed to it. */
const peer = () => {
  const incoming = new ByteQueue()
  const written: Array<Buffer> = []
  const stream: RfbStream = {
    read: (length) => incoming.read(length),
    write: (bytes) => {
      written.push(Buffer.from(bytes))
    }
  }
  return { stream, feed: (bytes: Uint8Array) => incoming.push(bytes), written, incoming }
}

const u32 = (value: number) => {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value)
  return bytes
}

const version = Buffer.from(rfbVersion, "latin1")

describe("vncAuthKey", () => {
  test("mirrors the bits of each byte", () => {
    // "a" is 0x61 = 01100001, mirrored 10000110 = 0x86.
    expect(vncAuthKey("a").toString("hex")).toBe("8600000000000000")
  })

  test("uses the first 8 bytes only", () => {
    expect(vncAuthKey("abcdefghXYZ").equals(vncAuthKey("abcdefgh"))).toBe(true)
  })

  test("keeps whole UTF-8 characters", () => {
    // "ü" is 2 bytes: 7 ASCII letters leave room for 1 byte, so it is left out.
    expect(vncAuthKey("abcdefgü").equals(vncAuthKey("abcdefg"))).toBe(true)
  })
})

describe("vncAuthResponse", () => {
  test("matches openssl's DES", () => {
    const challenge = Buffer.from("00112233445566778899aabbccddeeff", "hex")
    const expected = opensslDes(vncAuthKey("s3cret!"), challenge)
    expect(vncAuthResponse("s3cret!", challenge).toString("hex")).toBe(expected.toString("hex"))
  })
})

describe("authenticateToServer", () => {
  test("answers the VNC authentication challenge", async () => {
    const server = peer()
    const challenge = Buffer.alloc(16, 7)
    server.feed(version)
    server.feed(Buffer.of(1, SecurityType.VncAuthentication))
    server.feed(challenge)
    server.feed(u32(0))
    await authenticateToServer(server.stream, "pw")
    expect(server.written[0]?.toString("latin1")).toBe(rfbVersion)
    expect(server.written[1]).toEqual(Buffer.of(SecurityType.VncAuthentication))
    expect(server.written[2]?.equals(vncAuthResponse("pw", challenge))).toBe(true)
  })

  test("chooses None when the server offers it", async () => {
    const server = peer()
    server.feed(Buffer.concat([version, Buffer.of(1, SecurityType.None), u32(0)]))
    await authenticateToServer(server.stream, undefined)
    expect(server.written[1]).toEqual(Buffer.of(SecurityType.None))
  })

  test("reports a rejected password with the reason", async () => {
    const server = peer()
    const reason = Buffer.from("Authentication failed")
    server.feed(Buffer.concat([version, Buffer.of(1, 2), Buffer.alloc(16)]))
    server.feed(Buffer.concat([u32(1), u32(reason.length), reason]))
    await expect(authenticateToServer(server.stream, "wrong")).rejects.toThrow(
      "the VNC server rejected the password: Authentication failed"
    )
  })

  test("reports a refused connection", async () => {
    const server = peer()
    const reason = Buffer.from("Too many connections")
    server.feed(Buffer.concat([version, Buffer.of(0), u32(reason.length), reason]))
    await expect(authenticateToServer(server.stream, "pw")).rejects.toThrow(
      "refused the connection: Too many connections"
    )
  })

  test("rejects RFB 3.3", async () => {
    const server = peer()
    server.feed(Buffer.from("RFB 003.003\n"))
    await expect(authenticateToServer(server.stream, "pw")).rejects.toThrow("not RFB 3.8")
  })

  test("rejects a password request without a password", async () => {
    const server = peer()
    server.feed(Buffer.concat([version, Buffer.of(1, SecurityType.VncAuthentication)]))
    await expect(authenticateToServer(server.stream, undefined)).rejects.toThrow(
      "it wants a password, and none is set"
    )
  })

  test("fails when the server closes mid-handshake", async () => {
    const server = peer()
    server.feed(version)
    server.incoming.close(new Error("closed"))
    await expect(authenticateToServer(server.stream, "pw")).rejects.toThrow("closed")
  })
})

describe("acceptClient", () => {
  test("offers None and confirms it", async () => {
    const browser = peer()
    browser.feed(version)
    browser.feed(Buffer.of(SecurityType.None))
    expect(await acceptClient(browser.stream)).toBe(true)
    expect(Buffer.concat(browser.written)).toEqual(
      Buffer.concat([version, Buffer.of(1, SecurityType.None), u32(0)])
    )
  })

  test("sends a failure reason instead", async () => {
    const browser = peer()
    browser.feed(version)
    expect(await acceptClient(browser.stream, "guest off")).toBe(false)
    const reason = Buffer.from("guest off")
    expect(Buffer.concat(browser.written)).toEqual(
      Buffer.concat([version, Buffer.of(0), u32(reason.length), reason])
    )
  })

  test("rejects a type that was not offered", async () => {
    const browser = peer()
    browser.feed(Buffer.concat([version, Buffer.of(SecurityType.VncAuthentication)]))
    await expect(acceptClient(browser.stream)).rejects.toThrow("was not offered")
  })
})

describe("ByteQueue", () => {
  test("reads across chunks", async () => {
    const queue = new ByteQueue()
    queue.push(Buffer.from("ab"))
    const read = queue.read(5)
    queue.push(Buffer.from("cd"))
    queue.push(Buffer.from("efg"))
    expect((await read).toString()).toBe("abcde")
    expect(queue.drain().toString()).toBe("fg")
  })

  test("a close fails a waiting read", async () => {
    const queue = new ByteQueue()
    queue.push(Buffer.from("a"))
    const read = queue.read(2)
    queue.close(new Error("socket closed"))
    await expect(read).rejects.toThrow("socket closed")
  })

  test("bytes already there survive a close", async () => {
    const queue = new ByteQueue()
    queue.push(Buffer.from("abc"))
    queue.close(new Error("socket closed"))
    expect((await queue.read(3)).toString()).toBe("abc")
  })
})
