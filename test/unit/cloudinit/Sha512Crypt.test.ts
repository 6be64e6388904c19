import { describe, expect, test } from "bun:test"
import { randomBytes } from "node:crypto"
import { randomSalt, sha512Crypt } from "../../../src/cloudinit/Sha512Crypt.ts"

/**
 * Known answers from `openssl passwd -6 -salt SALT PASSWORD` (OpenSSL 3.0), except the empty
 * password, which OpenSSL rejects: that one is from glibc's crypt(3) through Perl. The first
 * two are the `$6$` examples of Drepper's "Unix crypt using SHA-256 and SHA-512".
 */
const knownAnswers: ReadonlyArray<
  readonly [name: string, password: string, salt: string, hash: string]
> = [
  [
    "specification example",
    "Hello world!",
    "saltstring",
    "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
  ],
  [
    "salt cut to 16 characters",
    "Hello world!",
    "saltstringsaltstring",
    "$6$saltstringsaltst$e.3mR68CqZEpesEX1HlFZT6sEanSOjM/b5UoDyDo00a8syek2cJldMjrbtKP86.FJvzluVR7nc3DNzelAwTxj."
  ],
  [
    "default password",
    "password",
    "Zz09./AbCdEfGhIj",
    "$6$Zz09./AbCdEfGhIj$dbaLweseVU/o2spvQyALxtUvjgnU5kb6eqXoVAyOxQ.tauX7.Lc5/groxNpXI6AYppFsJCfatgreNH0y9Ak66."
  ],
  [
    "empty password",
    "",
    "Zz09./AbCdEfGhIj",
    "$6$Zz09./AbCdEfGhIj$4e4Bca3hcAzCYvpcN/Tn43WV07BJzl0.sityUVoYbKpdyk9FEITfETKpXoIRLgQxb8CowT2B328ZPr2PHzSPo0"
  ],
  [
    "one-character password and salt",
    "a",
    "a",
    "$6$a$29zu4hMjaGc0i96zURSnuYGZCBFb99PKMXXy8DKoKFnLJLjKxPBK0I9XmqNL/tBPLcFBh2GXwrefsfJ7CXbZl0"
  ],
  [
    "63-byte password",
    "z".repeat(63),
    "k9QvR2mX",
    "$6$k9QvR2mX$mPDyzK3ItUzMlGVO1Xp6yjpSn6xLuRKbUCQ4qBvNYLFF9Kt0DxubFnOHYsx6pYXtZQMyBbDFqzEAGy/oWqj33/"
  ],
  [
    "64-byte password",
    "x".repeat(64),
    "k9QvR2mX",
    "$6$k9QvR2mX$EROdj9.DIdpoEgF8pKPoxibqCljWZYEPvfsWpt1/DvNBxDNn6/dwf/8xlPjMG9w6Xjd5q6cNY8s46.bFxIGJN."
  ],
  [
    "65-byte password",
    "y".repeat(65),
    "k9QvR2mX",
    "$6$k9QvR2mX$ZTCkm8c3vmY3REd8UDKbuOWQ.gbK9iBrWaQL4bBTVcgSPkxGXssb8x5vRiKPvAvAukMr0D3sgzdcbBtsUV3Nc0"
  ],
  [
    "200-byte password",
    "correct horse battery staple ".repeat(8).slice(0, 200),
    "0123456789abcdef",
    "$6$0123456789abcdef$AkN57NSPYaGq5TmohExZQvbiVObTm.GiZHMxEC5li9A4I9W/yzESLCszqDz7JrPXLNyox5KnpKeznm5kjR3Wy0"
  ],
  [
    "non-ASCII password",
    "pässwörd 虚拟机 🔑",
    "Zz09./AbCdEfGhIj",
    "$6$Zz09./AbCdEfGhIj$L2vhRkZkrZ9SpTqgh5AjqjD6b5h4zBNqkmZEjQxvSwSSySD.R5M1/AuZNY8AJbTc6ZR9ot6jvnBasSwLu81Ot/"
  ],
  [
    "quotes, dollar, backslash and tab",
    'it\'s "quoted" $HOME \\ tab\tend',
    "Zz09./AbCdEfGhIj",
    "$6$Zz09./AbCdEfGhIj$XQTH40RkEupYdKrXLIV/BIFtotd4S5NQaGGiFjggWxDzKAFY3YaT0xJZuDm4slcrgjDM83Tkw30ImwWc4n6XM/"
  ]
]

const cryptCharacters = /^[./0-9A-Za-z]+$/

const openssl = (password: string, salt: string): string => {
  const result = Bun.spawnSync(["openssl", "passwd", "-6", "-salt", salt, password])
  if (result.exitCode !== 0) throw new Error(`openssl failed: ${result.stderr.toString()}`)
  return result.stdout.toString().trim()
}

const hasOpenssl = Bun.which("openssl") !== null

describe("sha512Crypt known answers", () => {
  for (const [name, password, salt, hash] of knownAnswers) {
    test(name, () => {
      expect(sha512Crypt(password, salt)).toBe(hash)
    })
  }
})

describe("sha512Crypt against openssl", () => {
  test.skipIf(!hasOpenssl)("table agrees with openssl", () => {
    for (const [, password, salt, hash] of knownAnswers) {
      if (password === "") continue
      expect(openssl(password, salt)).toBe(hash)
    }
  })

  test.skipIf(!hasOpenssl)("random passwords and salts", () => {
    for (let round = 0; round < 12; round++) {
      const password = randomBytes(1 + round * 11)
        .toString("base64")
        .slice(0, 1 + round * 11)
      const salt = randomSalt().slice(0, 1 + (round % 16))
      expect(sha512Crypt(password, salt)).toBe(openssl(password, salt))
    }
  })
})

describe("sha512Crypt format", () => {
  test("hash has 86 characters", () => {
    const hash = sha512Crypt("password", "abcdefgh").split("$")[3] ?? ""
    expect(hash).toHaveLength(86)
    expect(hash).toMatch(cryptCharacters)
  })

  test("random salt by default", () => {
    const first = sha512Crypt("password")
    const second = sha512Crypt("password")
    expect(first).not.toBe(second)
    expect(first).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/)
  })
})

describe("randomSalt", () => {
  test("16 characters of the crypt alphabet", () => {
    const salt = randomSalt()
    expect(salt).toHaveLength(16)
    expect(salt).toMatch(cryptCharacters)
  })

  test("differs between calls", () => {
    expect(randomSalt()).not.toBe(randomSalt())
  })
})
