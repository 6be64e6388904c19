/**
 * Bytes that arrive in chunks from a socket, read back in exact lengths by a handshake. Once
 * the handshake is done, `drain` hands over whatever arrived beyond it.
 */
export class ByteQueue {
  private chunks: Array<Buffer> = []
  private size = 0
  private waiting:
    | {
        readonly length: number
        readonly resolve: (bytes: Buffer) => void
        readonly reject: (error: Error) => void
      }
    | undefined
  private closedWith: Error | undefined

  push(chunk: Uint8Array): void {
    if (this.closedWith !== undefined) return
    this.chunks.push(Buffer.from(chunk))
    this.size += chunk.length
    this.settle()
  }

  /** Resolves with exactly `length` bytes, in arrival order. One read at a time. */
  read(length: number): Promise<Buffer> {
    if (this.waiting !== undefined) return Promise.reject(new Error("a read is already waiting"))
    return new Promise((resolve, reject) => {
      this.waiting = { length, resolve, reject }
      this.settle()
    })
  }

  /** Fails the waiting read and every later one, for a closed or broken socket. */
  close(error: Error): void {
    this.closedWith ??= error
    this.settle()
  }

  /** Takes every byte not read yet. */
  drain(): Buffer {
    const rest = Buffer.concat(this.chunks)
    this.chunks = []
    this.size = 0
    return rest
  }

  private settle(): void {
    const waiting = this.waiting
    if (waiting === undefined) return
    if (this.size >= waiting.length) {
      this.waiting = undefined
      const all = Buffer.concat(this.chunks)
      const rest = all.subarray(waiting.length)
      this.chunks = rest.length === 0 ? [] : [rest]
      this.size = rest.length
      waiting.resolve(all.subarray(0, waiting.length))
    } else if (this.closedWith !== undefined) {
      this.waiting = undefined
      waiting.reject(this.closedWith)
    }
  }
}
