/** Entry of `guest-exec`; filled in with the guest agent client. */
export const guestExecMain = async (_args: ReadonlyArray<string>): Promise<number> => {
  process.stderr.write("guest-exec: not implemented yet\n")
  return 125
}
