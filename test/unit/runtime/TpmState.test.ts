import { describe, expect, test } from "bun:test"
import {
  blockedDirectory,
  resolveAccount,
  type StatDir,
  swtpmUserOf
} from "../../../src/runtime/TpmState.ts"

describe("swtpmUserOf", () => {
  test("libvirt's default is tss", () => {
    expect(swtpmUserOf(undefined)).toBe("tss")
    expect(swtpmUserOf('#swtpm_user = "root"\nuser = "root"\n')).toBe("tss")
  })

  test("the last setting wins", () => {
    expect(swtpmUserOf('swtpm_user = "tss"\nswtpm_user = "+0"\n')).toBe("+0")
  })
})

describe("resolveAccount", () => {
  const passwd = "root:x:0:0:root:/root:/bin/bash\ntss:x:104:111::/var/lib/tpm:/bin/false\n"

  test("by name", () => {
    expect(resolveAccount("tss", passwd)).toEqual({ uid: 104, gid: 111 })
  })

  test("by number", () => {
    expect(resolveAccount("+0", passwd)).toEqual({ uid: 0, gid: -1 })
  })

  test("unknown name", () => {
    expect(resolveAccount("swtpm", passwd)).toBeUndefined()
  })
})

describe("blockedDirectory", () => {
  const tss = { uid: 104, gid: 111 }
  const tree =
    (modes: Record<string, { uid?: number; gid?: number; mode: number }>): StatDir =>
    (path) => {
      const entry = modes[path]
      return entry === undefined ? undefined : { uid: 0, gid: 0, ...entry }
    }

  test("every directory lets others through", () => {
    const stat = tree({
      "/": { mode: 0o755 },
      "/data": { mode: 0o755 },
      "/data/tpm": { mode: 0o755 }
    })
    expect(blockedDirectory("/data/tpm", tss, stat)).toBeUndefined()
  })

  test("a private temporary directory blocks", () => {
    const stat = tree({
      "/": { mode: 0o755 },
      "/tmp/x": { mode: 0o700 },
      "/tmp/x/tpm": { mode: 0o755 }
    })
    expect(blockedDirectory("/tmp/x/tpm", tss, stat)).toBe("/tmp/x")
  })

  test("the owner's and the group's bits count for them", () => {
    const stat = tree({
      "/": { mode: 0o755 },
      "/own": { uid: 104, mode: 0o700 },
      "/own/grp": { gid: 111, mode: 0o710 }
    })
    expect(blockedDirectory("/own/grp", tss, stat)).toBeUndefined()
  })

  test("root passes everywhere", () => {
    const stat = tree({ "/": { mode: 0o700 } })
    expect(blockedDirectory("/x", { uid: 0, gid: 0 }, stat)).toBeUndefined()
  })
})
