import { createHash, randomBytes } from "node:crypto"

/** The alphabet of crypt(3) hashes, which is not the base64 of RFC 4648. */
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/** glibc's default number of rounds for `$6$` hashes. */
export const defaultRounds = 5000

const sha512 = (...parts: ReadonlyArray<Buffer>): Buffer => {
  const hash = createHash("sha512")
  for (const part of parts) hash.update(part)
  return hash.digest()
}

/** Repeats `source` until it is `length` bytes long. */
const stretch = (source: Buffer, length: number): Buffer => {
  const out = Buffer.alloc(length)
  for (let offset = 0; offset < length; offset += source.length) {
    source.copy(out, offset, 0, Math.min(source.length, length - offset))
  }
  return out
}

/** Byte order in which SHA-512-crypt emits its final digest, three bytes at a time. */
const outputOrder: ReadonlyArray<readonly [number, number, number]> = [
  [0, 21, 42],
  [22, 43, 1],
  [44, 2, 23],
  [3, 24, 45],
  [25, 46, 4],
  [47, 5, 26],
  [6, 27, 48],
  [28, 49, 7],
  [50, 8, 29],
  [9, 30, 51],
  [31, 52, 10],
  [53, 11, 32],
  [12, 33, 54],
  [34, 55, 13],
  [56, 14, 35],
  [15, 36, 57],
  [37, 58, 16],
  [59, 17, 38],
  [18, 39, 60],
  [40, 61, 19],
  [62, 20, 41]
]

const encode24 = (b2: number, b1: number, b0: number, characters: number): string => {
  let value = (b2 << 16) | (b1 << 8) | b0
  let out = ""
  for (let i = 0; i < characters; i++) {
    out += cryptAlphabet[value & 0x3f]
    value >>= 6
  }
  return out
}

/**
 * Hashes a password with SHA-512-crypt (`$6$`), the scheme every current Linux libc accepts in
 * /etc/shadow. Follows Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512" (2007).
 */
export const sha512Crypt = (password: string, salt = randomSalt()): string => {
  const key = Buffer.from(password, "utf8")
  const saltBytes = Buffer.from(salt.slice(0, 16), "utf8")

  const alternate = sha512(key, saltBytes, key)
  const initial = createHash("sha512").update(key).update(saltBytes)
  initial.update(stretch(alternate, key.length))
  for (let length = key.length; length > 0; length >>= 1) {
    initial.update(length & 1 ? alternate : key)
  }
  let digest = initial.digest()

  const passwordBytes = stretch(sha512(...Array(key.length).fill(key)), key.length)
  const saltDigest = sha512(...Array(16 + (digest[0] ?? 0)).fill(saltBytes))
  const saltSequence = stretch(saltDigest, saltBytes.length)

  for (let round = 0; round < defaultRounds; round++) {
    const step = createHash("sha512")
    step.update(round & 1 ? passwordBytes : digest)
    if (round % 3 !== 0) step.update(saltSequence)
    if (round % 7 !== 0) step.update(passwordBytes)
    step.update(round & 1 ? digest : passwordBytes)
    digest = step.digest()
  }

  let encoded = ""
  for (const [a, b, c] of outputOrder) {
    encoded += encode24(digest[a] ?? 0, digest[b] ?? 0, digest[c] ?? 0, 4)
  }
  encoded += encode24(0, 0, digest[63] ?? 0, 2)
  return `$6$${saltBytes.toString("utf8")}$${encoded}`
}

/** A random 16-character salt from the crypt alphabet. */
export const randomSalt = (): string =>
  [...randomBytes(16)].map((byte) => cryptAlphabet[byte & 0x3f]).join("")
