import { describe, expect, test } from "bun:test"
import { inlineHasher, startHasher } from "../../../src/images/StreamHasher.ts"
import { randomBytes, sha256Hex, sha512Hex } from "./TestServer.ts"

const feed = (update: (chunk: Uint8Array) => void, data: Uint8Array, chunkSize: number) => {
  for (let offset = 0; offset < data.length; offset += chunkSize) {
    update(data.subarray(offset, offset + chunkSize))
  }
}

describe("startHasher", () => {
  // Just over 3 MiB, so the last 1 MiB batch is partial.
  const data = randomBytes(3 * 1024 * 1024 + 4097, 41)

  test("worker digests match", async () => {
    const hasher = startHasher(["sha256", "sha512"])
    feed(hasher.update, data, 65536)
    const digests = await hasher.digests()
    expect(digests.get("sha256")).toBe(sha256Hex(data))
    expect(digests.get("sha512")).toBe(sha512Hex(data))
  })

  test("odd chunk sizes", async () => {
    const hasher = startHasher(["sha256"])
    feed(hasher.update, data, 1_000_003)
    expect((await hasher.digests()).get("sha256")).toBe(sha256Hex(data))
  })

  test("empty input", async () => {
    const hasher = startHasher(["sha256"])
    expect((await hasher.digests()).get("sha256")).toBe(sha256Hex(new Uint8Array()))
  })

  test("inline fallback matches", async () => {
    const hasher = inlineHasher(["sha256"])
    feed(hasher.update, data, 65536)
    expect((await hasher.digests()).get("sha256")).toBe(sha256Hex(data))
  })
})
