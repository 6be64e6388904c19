import { describe, expect, test } from "bun:test"
import { Result } from "effect"
import {
  builtInCatalogue,
  type Catalogue,
  describeSource,
  parseCatalogue
} from "../../../src/catalogue/Catalogue.ts"

/** Every key the configuration reference lists. */
const referenceKeys = [
  "ubuntu-2404",
  "ubuntu-2404-arm64",
  "ubuntu-2204",
  "ubuntu-2204-arm64",
  "ubuntu-2004",
  "debian-12",
  "debian-12-arm64",
  "debian-11",
  "centos-stream-9",
  "fedora-41",
  "fedora-41-arm64",
  "opensuse-leap-155",
  "rocky-linux-9",
  "rocky-linux-9-arm64",
  "rocky-linux-8",
  "almalinux-9",
  "almalinux-9-arm64",
  "almalinux-8",
  "archlinux",
  "alpine-3",
  "kali"
]

/** Current releases the built-in catalogue adds beyond the reference. */
const currentKeys = [
  "debian-13",
  "debian-13-arm64",
  "fedora-43",
  "fedora-43-arm64",
  "centos-stream-10",
  "rocky-linux-10",
  "rocky-linux-10-arm64",
  "almalinux-10",
  "almalinux-10-arm64",
  "opensuse-leap-160",
  "opensuse-tumbleweed",
  "alpine-3-arm64",
  "kali-arm64"
]

const parse = (text: string) => parseCatalogue(text, "/config/distros.yaml")

const builtIn = (): Catalogue => {
  const result = builtInCatalogue()
  if (Result.isFailure(result)) throw new Error(result.failure.message)
  return result.success
}

/** The problem lines of a catalogue that must fail to parse. */
const problemsOf = (text: string): ReadonlyArray<string> => {
  const result = parse(text)
  if (Result.isSuccess(result)) throw new Error("expected the catalogue to be rejected")
  return result.failure.problems
}

const entry = (fields: string) => `distributions:\n  demo:\n${fields}`
const url = "    url: https://example.com/demo.qcow2\n"
const sha256 = "a".repeat(64)

describe("built-in catalogue", () => {
  test("parses", () => {
    expect(builtIn().size).toBeGreaterThan(referenceKeys.length)
  })

  test("has every reference key", () => {
    const keys = new Set(builtIn().keys())
    expect(referenceKeys.filter((key) => !keys.has(key))).toEqual([])
  })

  test("has current releases", () => {
    const keys = new Set(builtIn().keys())
    expect(currentKeys.filter((key) => !keys.has(key))).toEqual([])
  })

  test("arm64 keys are aarch64 images", () => {
    for (const distro of builtIn().values()) {
      const expected = distro.key.endsWith("-arm64") ? "aarch64" : "x86_64"
      expect({ key: distro.key, arch: distro.arch }).toEqual({ key: distro.key, arch: expected })
    }
  })

  test("every image is fetched over https", () => {
    for (const distro of builtIn().values()) {
      expect({ key: distro.key, url: distro.url.slice(0, 8) }).toEqual({
        key: distro.key,
        url: "https://"
      })
    }
  })

  test("names are unique", () => {
    const names = [...builtIn().values()].map((distro) => distro.name)
    expect(names.length).toBe(new Set(names).size)
  })

  test("entry fields", () => {
    expect(builtIn().get("debian-12")).toEqual({
      key: "debian-12",
      name: "Debian 12 (Bookworm)",
      url: "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-generic-amd64.qcow2",
      arch: "x86_64",
      user: "user",
      checksum: {
        _tag: "SumsFile",
        url: "https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS"
      }
    })
  })

  test("describeSource", () => {
    expect(describeSource({ _tag: "BuiltIn" })).toBe("the built-in catalogue")
    expect(describeSource({ _tag: "File", path: "/config/distros.yaml" })).toBe(
      "/config/distros.yaml"
    )
  })
})

describe("parseCatalogue", () => {
  test("minimal entry gets defaults", () => {
    const result = parse(entry(url))
    expect(Result.getOrThrow(result).get("demo")).toEqual({
      key: "demo",
      name: "demo",
      url: "https://example.com/demo.qcow2",
      arch: "x86_64",
      user: "user",
      checksum: undefined
    })
  })

  test("digest, alias arch and user", () => {
    const text = entry(
      `${url}    name: " Demo "\n    arch: ARM64\n    user: admin\n` +
        `    sha256: ${sha256.toUpperCase()}\n`
    )
    expect(Result.getOrThrow(parse(text)).get("demo")).toEqual({
      key: "demo",
      name: "Demo",
      url: "https://example.com/demo.qcow2",
      arch: "aarch64",
      user: "admin",
      checksum: { _tag: "Digest", algorithm: "sha256", hex: sha256 }
    })
  })

  test("sha512 digest", () => {
    const text = entry(`${url}    sha512: ${"0f".repeat(64)}\n`)
    expect(Result.getOrThrow(parse(text)).get("demo")?.checksum).toEqual({
      _tag: "Digest",
      algorithm: "sha512",
      hex: "0f".repeat(64)
    })
  })

  test("legacy format field is ignored", () => {
    const text = entry(`${url}    format: qcow2\n`)
    expect(Result.isSuccess(parse(text))).toBe(true)
  })

  test("error names the source", () => {
    const result = parse("")
    if (Result.isSuccess(result)) throw new Error("expected the catalogue to be rejected")
    expect(result.failure.message).toStartWith(
      "invalid distribution catalogue /config/distros.yaml:\n  "
    )
  })
})

interface MalformedCase {
  readonly name: string
  readonly text: string
  readonly problems: ReadonlyArray<string>
}

const malformed: ReadonlyArray<MalformedCase> = [
  {
    name: "empty file",
    text: "",
    problems: ["expected a top-level mapping 'distributions:' of keys to entries"]
  },
  {
    name: "comment only",
    text: "# nothing here\n",
    problems: ["expected a top-level mapping 'distributions:' of keys to entries"]
  },
  {
    name: "not a mapping",
    text: "- ubuntu\n- debian\n",
    problems: ["expected a top-level mapping 'distributions:' of keys to entries"]
  },
  {
    name: "distributions is a list",
    text: "distributions:\n  - ubuntu\n",
    problems: ["expected a top-level mapping 'distributions:' of keys to entries"]
  },
  {
    name: "no entries",
    text: "distributions: {}\n",
    problems: ["the catalogue has no entries"]
  },
  {
    name: "invalid YAML",
    text: "distributions:\n  demo: [\n",
    problems: ["not valid YAML: "]
  },
  {
    name: "duplicate key",
    text: `distributions:\n  demo:\n${url}  demo:\n${url}`,
    problems: ["demo: defined twice"]
  },
  {
    name: "entry is a string",
    text: "distributions:\n  demo: https://example.com/demo.qcow2\n",
    problems: ["demo: expected a mapping with name, url and arch"]
  },
  {
    name: "entry without url",
    text: entry("    name: Demo\n"),
    problems: ["demo.url: expected an http:// or https:// URL, got null"]
  },
  {
    name: "url not http",
    text: entry("    url: ftp://example.com/demo.qcow2\n"),
    problems: ['demo.url: expected an http:// or https:// URL, got "ftp://example.com/demo.qcow2"']
  },
  {
    name: "empty name",
    text: entry(`${url}    name: "  "\n`),
    problems: ["demo.name: expected a non-empty string"]
  },
  {
    name: "bad arch",
    text: entry(`${url}    arch: riscv64\n`),
    problems: ['demo.arch: expected x86_64 or aarch64, got "riscv64"']
  },
  {
    name: "arch not a string",
    text: entry(`${url}    arch: 64\n`),
    problems: ["demo.arch: expected x86_64 or aarch64, got 64"]
  },
  {
    name: "bad user",
    text: entry(`${url}    user: Root User\n`),
    problems: ['demo.user: expected a Linux user name such as "user", got "Root User"']
  },
  {
    name: "bad sha256 digest",
    text: entry(`${url}    sha256: abc123\n`),
    problems: ['demo.sha256: expected a sha256 digest of 64 hex digits, got "abc123"']
  },
  {
    name: "sha512 given a sha256 digest",
    text: entry(`${url}    sha512: ${sha256}\n`),
    problems: ["demo.sha512: expected a sha512 digest of 128 hex digits"]
  },
  {
    name: "bad checksum_url",
    text: entry(`${url}    checksum_url: SHA256SUMS\n`),
    problems: ['demo.checksum_url: expected an http:// or https:// URL, got "SHA256SUMS"']
  },
  {
    name: "two checksums",
    text: entry(`${url}    sha256: ${sha256}\n    checksum_url: https://example.com/SUMS\n`),
    problems: [
      "demo: expected at most one of sha256, sha512 and checksum_url, got sha256 and checksum_url"
    ]
  },
  {
    name: "misspelt checksum field",
    text: entry(`${url}    sha265: ${sha256}\n`),
    problems: ["demo.sha265: unknown field; did you mean sha256?"]
  },
  {
    name: "misspelt arch field",
    text: entry(`${url}    arhc: aarch64\n`),
    problems: ["demo.arhc: unknown field; did you mean arch?"]
  },
  {
    name: "checksum-url with a dash",
    text: entry(`${url}    checksum-url: https://example.com/SUMS\n`),
    problems: ["demo.checksum-url: unknown field; did you mean checksum_url?"]
  },
  {
    name: "bad key",
    text: `distributions:\n  Demo_1:\n${url}`,
    problems: ["Demo_1: keys may contain only a-z, 0-9, '.', '_' and '-'"]
  },
  {
    name: "every problem of every entry",
    text:
      "distributions:\n" +
      "  one:\n    name: One\n" +
      `  two:\n${url}    arch: sparc\n    sha256: nope\n` +
      `  three:\n${url}`,
    problems: [
      "one.url: expected an http:// or https:// URL, got null",
      'two.arch: expected x86_64 or aarch64, got "sparc"',
      'two.sha256: expected a sha256 digest of 64 hex digits, got "nope"'
    ]
  }
]

describe("malformed catalogues", () => {
  for (const { name, text, problems } of malformed) {
    test(name, () => {
      const actual = problemsOf(text)
      expect(actual.length).toBe(problems.length)
      problems.forEach((expected, position) => {
        expect(actual[position]).toStartWith(expected)
      })
    })
  }
})
