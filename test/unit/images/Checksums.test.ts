import { describe, expect, test } from "bun:test"
import { fileNameOfUrl, findDigest, parseSumsFile } from "../../../src/images/Checksums.ts"

const a64 = "a".repeat(64)
const b64 = "b".repeat(64)
const c128 = "c".repeat(128)

describe("parseSumsFile", () => {
  test("GNU text and binary lines", () => {
    const entries = parseSumsFile(`${a64}  noble.img\n${b64} *noble.tar.gz\n`)
    expect(entries).toEqual([
      { fileName: "noble.img", digest: { algorithm: "sha256", hex: a64 } },
      { fileName: "noble.tar.gz", digest: { algorithm: "sha256", hex: b64 } }
    ])
  })

  test("BSD tag lines", () => {
    const entries = parseSumsFile(`SHA256 (Fedora-Cloud (x86).qcow2) = ${a64.toUpperCase()}\n`)
    expect(entries).toEqual([
      { fileName: "Fedora-Cloud (x86).qcow2", digest: { algorithm: "sha256", hex: a64 } }
    ])
  })

  test("sha512 by digest length", () => {
    expect(parseSumsFile(`${c128}  debian.qcow2`)[0]?.digest.algorithm).toBe("sha512")
  })

  test("CRLF line endings and ./ prefixes", () => {
    expect(parseSumsFile(`${a64}  ./disk.img\r\n`)[0]?.fileName).toBe("disk.img")
  })

  test("skips comments, other algorithms and PGP armour", () => {
    const text = [
      "-----BEGIN PGP SIGNED MESSAGE-----",
      "Hash: SHA256",
      "",
      "# Fedora-Cloud-Base.qcow2: 123 bytes",
      `MD5 (disk.img) = ${"d".repeat(32)}`,
      `${"e".repeat(40)}  disk.img`,
      `SHA256 (disk.img) = ${a64}`,
      "-----BEGIN PGP SIGNATURE-----",
      `${b64}  disk.img`,
      "-----END PGP SIGNATURE-----"
    ].join("\n")
    expect(parseSumsFile(text)).toEqual([
      { fileName: "disk.img", digest: { algorithm: "sha256", hex: a64 } }
    ])
  })

  test("escaped GNU names", () => {
    expect(parseSumsFile(`\\${a64}  new\\nline.img`)[0]?.fileName).toBe("new\nline.img")
  })
})

describe("findDigest", () => {
  const entries = parseSumsFile(
    [`${a64}  noble.img`, `${b64}  noble.img.manifest`, `${a64}  sub/one.img`].join("\n")
  )

  test("exact name", () => {
    expect(findDigest(entries, "noble.img")?.hex).toBe(a64)
  })

  test("name in a subdirectory", () => {
    expect(findDigest(entries, "one.img")?.hex).toBe(a64)
  })

  test("missing name", () => {
    expect(findDigest(entries, "jammy.img")).toBeUndefined()
  })

  test("ambiguous base name", () => {
    const twice = parseSumsFile(`${a64}  x/disk.img\n${b64}  y/disk.img`)
    expect(findDigest(twice, "disk.img")).toBeUndefined()
  })

  test("prefers sha512 when both are listed", () => {
    const both = parseSumsFile(`${a64}  disk.img\n${c128}  disk.img`)
    expect(findDigest(both, "disk.img")?.algorithm).toBe("sha512")
  })
})

describe("fileNameOfUrl", () => {
  test("last segment, decoded, without the query", () => {
    expect(fileNameOfUrl("https://example.com/a/my%20disk.img?x=1")).toBe("my disk.img")
  })
})
