/**
 * The location of an emulated TPM's state. libvirt runs swtpm as `swtpm_user` from qemu.conf
 * (Debian: tss) and keeps the state under /var/lib/libvirt/swtpm/<uuid>. The run points that
 * path at the VM directory with a symlink, which works only when that user can reach it.
 */
import { statSync } from "node:fs"
import { dirname } from "node:path"

/** The directory in which libvirt keeps an emulated TPM's state, by domain UUID (libvirt 9 to 11). */
export const libvirtTpmStateDir = "/var/lib/libvirt/swtpm"

/** Reads `swtpm_user` from qemu.conf; libvirt's default is tss. */
export const swtpmUserOf = (qemuConf: string | undefined): string => {
  const matches = [...(qemuConf ?? "").matchAll(/^\s*swtpm_user\s*=\s*"([^"]*)"/gm)]
  return matches.at(-1)?.[1] ?? "tss"
}

export interface Account {
  readonly uid: number
  readonly gid: number
}

/**
 * Finds a qemu.conf user in /etc/passwd. libvirt's `+N` form names a uid directly; its group
 * is then unknown, so gid -1 matches no directory's group.
 */
export const resolveAccount = (user: string, passwd: string): Account | undefined => {
  if (/^\+\d+$/.test(user)) return { uid: Number(user.slice(1)), gid: -1 }
  for (const line of passwd.split("\n")) {
    const fields = line.split(":")
    if (fields[0] === user && fields.length >= 4) {
      return { uid: Number(fields[2]), gid: Number(fields[3]) }
    }
  }
  return undefined
}

/** The owner, group and mode of a directory, or undefined when it does not exist. */
export type StatDir = (path: string) => { uid: number; gid: number; mode: number } | undefined

const statDir: StatDir = (path) => {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

/**
 * Returns the first directory on the way to `path` (itself included) that `account` may not
 * enter, or undefined when every one lets it through. Supplementary groups are not counted, so
 * a directory open only to such a group is reported as blocked.
 */
export const blockedDirectory = (
  path: string,
  account: Account,
  stat: StatDir = statDir
): string | undefined => {
  if (account.uid === 0) return undefined
  const chain: Array<string> = []
  for (let dir = path; ; dir = dirname(dir)) {
    chain.unshift(dir)
    if (dir === dirname(dir)) break
  }
  for (const dir of chain) {
    const info = stat(dir)
    if (info === undefined) continue
    let searchBit = 0o001
    if (info.uid === account.uid) searchBit = 0o100
    else if (info.gid === account.gid) searchBit = 0o010
    if ((info.mode & searchBit) === 0) return dir
  }
  return undefined
}
