import { existsSync, readFileSync } from "node:fs"

export type ContainerEngine = "docker" | "podman" | "kubernetes" | "none"

export interface ContainerRuntime {
  readonly engine: ContainerEngine
  /** True when root in here is an unprivileged user outside (Docker or Podman rootless). */
  readonly rootless: boolean
}

const read = (path: string): string => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return ""
  }
}

/**
 * Reads how root inside maps outside from a uid_map: rootless engines map uid 0 to an
 * ordinary user's uid, while a plain or rootful container maps it to 0.
 */
export const isRootlessMap = (uidMap: string): boolean =>
  uidMap
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .some(([inside, outside]) => inside === "0" && outside !== undefined && outside !== "0")

/**
 * Tells which container engine runs this process, from the marker files each one creates:
 * Kubernetes mounts a service-account directory, Podman writes /run/.containerenv, Docker
 * writes /.dockerenv.
 */
export const detectContainerRuntime = (): ContainerRuntime => {
  const engine: ContainerEngine = existsSync("/var/run/secrets/kubernetes.io")
    ? "kubernetes"
    : existsSync("/run/.containerenv")
      ? "podman"
      : existsSync("/.dockerenv")
        ? "docker"
        : "none"
  return { engine, rootless: isRootlessMap(read("/proc/self/uid_map")) }
}

export const describeRuntime = (runtime: ContainerRuntime): string =>
  runtime.engine === "none"
    ? "no container"
    : `${runtime.engine}${runtime.rootless ? " (rootless)" : ""}`
