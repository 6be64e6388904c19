import type { Graphics, Network, Redfish } from "../domain/Config.ts"
import type { EnvReader } from "./Env.ts"

interface PortClaim {
  readonly variable: string
  readonly port: number
  readonly protocol: "tcp" | "udp"
  /** The PORT_FWD guest port, to write a corrected entry in the example. */
  readonly guest?: number
}

/** The next port above `port` that no claim of the same protocol uses. */
const freePortAbove = (claims: ReadonlyArray<PortClaim>, claim: PortClaim): number => {
  const taken = (port: number) =>
    claims.some((other) => other.port === port && other.protocol === claim.protocol)
  let port = claim.port + 1
  while (port <= 65535 && taken(port)) port += 1
  return port <= 65535 ? port : claim.port - 1
}

const exampleFor = (claims: ReadonlyArray<PortClaim>, claim: PortClaim): string => {
  const port = freePortAbove(claims, claim)
  if (claim.guest === undefined) return `${claim.variable}=${port}`
  const suffix = claim.protocol === "udp" ? "/udp" : ""
  return `${claim.variable}=${port}:${claim.guest}${suffix}`
}

/**
 * Reports two services that would listen on one host port. TCP and UDP ports are separate
 * spaces, so a UDP forward may reuse a TCP port number. The problem goes to the variable the
 * user set, so a default port is never the one asked to move.
 */
export const checkPortCollisions = (
  reader: EnvReader,
  network: Network,
  graphics: Graphics,
  redfish: Redfish
): void => {
  const claims: Array<PortClaim> = []
  if (network.nics.some((nic) => nic.mode === "nat")) {
    claims.push({ variable: "SSH_PORT", port: network.sshPort, protocol: "tcp" })
  }
  if (graphics.mode !== "none") {
    claims.push({ variable: "VNC_PORT", port: graphics.vncPort, protocol: "tcp" })
  }
  if (graphics.mode === "novnc") {
    claims.push({ variable: "NOVNC_PORT", port: graphics.novncPort, protocol: "tcp" })
  }
  if (redfish.enabled) {
    claims.push({ variable: "REDFISH_PORT", port: redfish.port, protocol: "tcp" })
  }
  for (const forward of network.portForwards) {
    claims.push({
      variable: "PORT_FWD",
      port: forward.host,
      protocol: forward.protocol,
      guest: forward.guest
    })
  }
  claims.forEach((claim, position) => {
    const earlier = claims
      .slice(0, position)
      .find((other) => other.port === claim.port && other.protocol === claim.protocol)
    if (earlier === undefined) return
    const [blamed, holder] =
      reader.isSet(claim.variable) || !reader.isSet(earlier.variable)
        ? [claim, earlier]
        : [earlier, claim]
    const holderName =
      holder.variable === blamed.variable ? `another ${holder.variable} entry` : holder.variable
    reader.problem(
      blamed.variable,
      `host ${claim.protocol.toUpperCase()} port ${claim.port} is already used by ` +
        `${holderName}; give each service its own port`,
      exampleFor(claims, blamed)
    )
  })
}
