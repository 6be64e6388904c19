/**
 * Exit codes of `vm-runner`, documented in the README. `guest-exec` returns the guest command's
 * own status instead, with its own codes for its failures (see `GuestExecExit`).
 */
export const ExitCode = {
  Ok: 0,
  /** An environment variable or the catalogue is invalid. Nothing was changed on disk. */
  Config: 1,
  /** The command line is invalid: an unknown flag or a missing argument. */
  Usage: 2,
  /** The host cannot run the VM: KVM required but unusable, a tool or firmware missing. */
  Environment: 3,
  /** An image could not be fetched, verified, unpacked or converted. */
  Image: 4,
  /** libvirt rejected the domain or failed to start, stop or talk to it. */
  Libvirt: 5,
  /** The guest failed: it crashed, or did not power off within `SHUTDOWN_TIMEOUT`. */
  Guest: 6,
  /** Another run holds the VM directory. */
  Busy: 7,
  /** A bug in vm-runner. */
  Internal: 70,
  /** Stopped by SIGINT before the guest was started. */
  Interrupted: 130
} as const

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/** Exit codes of `guest-exec` when it fails itself rather than passing on the guest's status. */
export const GuestExecExit = {
  /** The command did not finish within `--timeout`; it may still run in the guest. */
  Timeout: 124,
  /** guest-exec failed: no such domain, libvirt unreachable, a protocol error. */
  Failed: 125,
  /** The guest agent is not connected (not installed, not started yet, or the guest is off). */
  AgentNotConnected: 127,
  /** A command killed by signal N exits with 128 + N, as a shell reports it. */
  SignalBase: 128
} as const

/** An expected failure: printed as one line without a stack, exits with `exitCode`. */
export interface ExpectedFailure {
  readonly exitCode: number
  readonly message: string
}

export const isExpectedFailure = (error: unknown): error is ExpectedFailure =>
  typeof error === "object" &&
  error !== null &&
  "exitCode" in error &&
  typeof error.exitCode === "number" &&
  "message" in error &&
  typeof error.message === "string"
