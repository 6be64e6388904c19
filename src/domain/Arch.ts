import type { Arch } from "./Config.ts"

// A Map rather than an object literal, so ARCH=constructor finds nothing on Object.prototype.
const aliases: ReadonlyMap<string, Arch> = new Map([
  ["x86_64", "x86_64"],
  ["amd64", "x86_64"],
  ["aarch64", "aarch64"],
  ["arm64", "aarch64"]
])

/** Maps an architecture name or alias (`amd64`, `arm64`) to its canonical name. */
export const normalizeArch = (raw: string): Arch | undefined =>
  aliases.get(raw.trim().toLowerCase())

/** The architecture of the machine vm-runner runs on, in QEMU's naming. */
export const hostArch = (): Arch | undefined =>
  normalizeArch(process.arch === "x64" ? "x86_64" : process.arch)
