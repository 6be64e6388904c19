import type { Brand } from "effect"

/**
 * A VM name that is safe as a libvirt domain name, a directory name, a cloud-init hostname and
 * part of a file name: letters, digits, `.`, `_` and `-`, starting with a letter or digit, at
 * most 63 characters (the length limit of a DNS label, because it becomes the guest hostname).
 */
export type VmName = string & Brand.Brand<"VmName">

export const vmNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/

export const parseVmName = (raw: string): VmName | undefined =>
  vmNamePattern.test(raw) ? (raw as VmName) : undefined

/** Docker and Podman set HOSTNAME to the container id (12 to 64 hex digits) by default. */
export const isContainerId = (hostname: string): boolean => /^[0-9a-f]{12,64}$/.test(hostname)
