import type { Catalogue } from "../catalogue/Catalogue.ts"
import type { Arch } from "../domain/Config.ts"

/** Renders the catalogue as aligned columns: key, name, architecture, login user. */
export const renderDistros = (catalogue: Catalogue, arch: Arch | undefined): string => {
  const entries = [...catalogue.values()]
    .filter((distro) => arch === undefined || distro.arch === arch)
    .sort((a, b) => a.key.localeCompare(b.key))
  if (entries.length === 0) return ""
  const keyWidth = Math.max(...entries.map((distro) => distro.key.length), "DISTRO".length)
  const nameWidth = Math.max(...entries.map((distro) => distro.name.length), "NAME".length)
  const row = (key: string, name: string, archName: string, user: string) =>
    `${key.padEnd(keyWidth)}  ${name.padEnd(nameWidth)}  ${archName.padEnd(7)}  ${user}`.trimEnd()
  const lines = entries.map((distro) => row(distro.key, distro.name, distro.arch, distro.user))
  return [row("DISTRO", "NAME", "ARCH", "USER"), ...lines].join("\n") + "\n"
}
