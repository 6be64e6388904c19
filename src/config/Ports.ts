import type { Graphics, Network, Redfish } from "../domain/Config.ts"
import type { EnvReader } from "./Env.ts"

/**
 * Reports two services that would listen on one host port. TCP and UDP ports are separate
 * spaces, so a UDP forward may reuse a TCP port number.
 */
export const checkPortCollisions = (
  reader: EnvReader,
  network: Network,
  graphics: Graphics,
  redfish: Redfish
): void => {
  const claims: Array<{ variable: string; port: number; protocol: "tcp" | "udp" }> = []
  if (network.nics.some((nic) => nic.mode === "nat")) {
    claims.push({ variable: "SSH_PORT", port: network.sshPort, protocol: "tcp" })
  }
  if (graphics.mode !== "none")
    claims.push({ variable: "VNC_PORT", port: graphics.vncPort, protocol: "tcp" })
  if (graphics.mode === "novnc") {
    claims.push({ variable: "NOVNC_PORT", port: graphics.novncPort, protocol: "tcp" })
  }
  if (redfish.enabled)
    claims.push({ variable: "REDFISH_PORT", port: redfish.port, protocol: "tcp" })
  for (const forward of network.portForwards) {
    claims.push({ variable: "PORT_FWD", port: forward.host, protocol: forward.protocol })
  }
  claims.forEach((claim, position) => {
    const earlier = claims
      .slice(0, position)
      .find((other) => other.port === claim.port && other.protocol === claim.protocol)
    if (earlier !== undefined) {
      reader.problem(
        claim.variable,
        `host ${claim.protocol.toUpperCase()} port ${claim.port} is already used by ` +
          `${earlier.variable}; give each service its own port`
      )
    }
  })
}
