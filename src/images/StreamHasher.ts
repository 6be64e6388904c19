import type { DigestAlgorithm } from "./Checksums.ts"

/** Incremental digests of a byte stream, fed chunk by chunk during a download. */
export interface StreamHasher {
  /** Adds bytes; the caller may reuse `chunk` once this returns. */
  readonly update: (chunk: Uint8Array) => void
  /** Finishes every digest, as lower-case hex, and releases the hasher. */
  readonly digests: () => Promise<Map<DigestAlgorithm, string>>
  /** Releases the hasher without a result, after a failed transfer. */
  readonly dispose: () => void
}

/** Chunks are copied into batches of this size, so one message carries 1 MiB, not 64 KiB. */
const batchSize = 1024 * 1024

/**
 * The worker's code, as a string so it runs from a Blob URL: a file next to this module would
 * need its own entry point in the single-file build.
 */
const workerSource = `
const hashers = new Map()
self.onmessage = (event) => {
  const message = event.data
  if (message.type === "start") {
    for (const algorithm of message.algorithms) hashers.set(algorithm, new Bun.CryptoHasher(algorithm))
  } else if (message.type === "data") {
    for (const hasher of hashers.values()) hasher.update(message.bytes)
  } else {
    postMessage([...hashers].map(([algorithm, hasher]) => [algorithm, hasher.digest("hex")]))
  }
}
`

let workerUrl: string | undefined

/** Hashes on the calling thread; the fallback when no worker can start. */
export const inlineHasher = (algorithms: ReadonlyArray<DigestAlgorithm>): StreamHasher => {
  const hashers = algorithms.map(
    (algorithm) => [algorithm, new Bun.CryptoHasher(algorithm)] as const
  )
  return {
    update: (chunk) => {
      for (const [, hasher] of hashers) hasher.update(chunk)
    },
    digests: async () =>
      new Map(hashers.map(([algorithm, hasher]) => [algorithm, hasher.digest("hex")])),
    dispose: () => {}
  }
}

/**
 * Hashes on a worker thread, so sha256 of one chunk overlaps the receiving of the next. Inline
 * hashing cost about a fifth of loopback throughput on the benchmark machine
 * (bench/download.ts). Falls back to `inlineHasher` when a worker cannot start.
 */
export const startHasher = (algorithms: ReadonlyArray<DigestAlgorithm>): StreamHasher => {
  let worker: Worker
  try {
    workerUrl ??= URL.createObjectURL(new Blob([workerSource], { type: "text/javascript" }))
    worker = new Worker(workerUrl)
  } catch {
    return inlineHasher(algorithms)
  }
  worker.postMessage({ type: "start", algorithms })
  let batch = new Uint8Array(batchSize)
  let used = 0
  const flush = () => {
    if (used === 0) return
    // Transferring the buffer hands it to the worker without a copy; a new batch starts empty.
    worker.postMessage({ type: "data", bytes: batch.subarray(0, used) }, [batch.buffer])
    batch = new Uint8Array(batchSize)
    used = 0
  }
  return {
    update: (chunk) => {
      let offset = 0
      while (offset < chunk.length) {
        const length = Math.min(chunk.length - offset, batchSize - used)
        batch.set(chunk.subarray(offset, offset + length), used)
        used += length
        offset += length
        if (used === batchSize) flush()
      }
    },
    digests: () => {
      flush()
      return new Promise((resolve, reject) => {
        worker.onmessage = (event: MessageEvent<Array<[DigestAlgorithm, string]>>) => {
          worker.terminate()
          resolve(new Map(event.data))
        }
        worker.onerror = (event) => {
          worker.terminate()
          reject(new Error(`hash worker failed: ${event.message}`))
        }
        worker.postMessage({ type: "digest" })
      })
    },
    dispose: () => worker.terminate()
  }
}
