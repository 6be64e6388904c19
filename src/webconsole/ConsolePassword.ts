import { randomInt } from "node:crypto"
import { Effect } from "effect"
import type { GraphicsMode, VmConfig } from "../domain/Config.ts"

/** Letters and digits without look-alikes (0/O, 1/l/I), so a printed password is typed right. */
export const passwordAlphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

/**
 * Length of a generated password. Plain VNC checks 8 characters, so a longer one would only
 * look stronger. The web console checks every character, and VNC then listens on loopback
 * only, so noVNC gets 16.
 */
export const generatedPasswordLength: Readonly<Record<Exclude<GraphicsMode, "none">, number>> = {
  vnc: 8,
  novnc: 16
}

export const generatePassword = (length: number): string =>
  Array.from({ length }, () => passwordAlphabet[randomInt(passwordAlphabet.length)]).join("")

/**
 * Returns the configuration with a console password: VNC_PASSWORD, or, when it is unset and
 * the guest has a display, one generated for this run and printed once on standard output
 * (never to the log).
 */
export const withConsolePassword = (config: VmConfig) =>
  Effect.gen(function* () {
    const { graphics } = config
    if (graphics.mode === "none" || graphics.vncPassword !== undefined) return config
    const password = generatePassword(generatedPasswordLength[graphics.mode])
    process.stdout.write(
      `vm-runner: console password for this run (VNC_PASSWORD is unset): ${password}\n`
    )
    yield* Effect.logInfo(
      "VNC_PASSWORD is unset: generated a console password for this run and printed it once " +
        "on standard output"
    )
    return { ...config, graphics: { ...graphics, vncPassword: password } } satisfies VmConfig
  })
