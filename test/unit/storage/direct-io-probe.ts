/**
 * Prints `supportsDirectIo` and `filesystemName` of the directory in argv[2] as JSON. The
 * DirectIo test runs it inside a private mount namespace, where it can mount a ramfs.
 */
import { filesystemName, supportsDirectIo } from "../../../src/storage/DirectIo.ts"

const dir = process.argv[2]
if (dir === undefined) throw new Error("usage: direct-io-probe.ts DIR")
process.stdout.write(
  JSON.stringify({ directIo: supportsDirectIo(dir), filesystem: filesystemName(dir) })
)
