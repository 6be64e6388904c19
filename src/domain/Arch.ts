import type { Arch } from "./Config.ts"

const aliases: Record<string, Arch> = {
  x86_64: "x86_64",
  amd64: "x86_64",
  aarch64: "aarch64",
  arm64: "aarch64"
}

/** Maps an architecture name or alias (`amd64`, `arm64`) to its canonical name. */
export const normalizeArch = (raw: string): Arch | undefined => aliases[raw.trim().toLowerCase()]

/** The architecture of the machine vm-runner runs on, in QEMU's naming. */
export const hostArch = (): Arch | undefined =>
  normalizeArch(process.arch === "x64" ? "x86_64" : process.arch)
