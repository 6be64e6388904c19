import { describe, expect, test } from "bun:test"
import {
  ByteQueue,
  encodeCommand,
  encodeSyncDelimited,
  parseReply,
  SyncDelimiter
} from "../../../src/agent/AgentProtocol.ts"

const text = (bytes: Uint8Array | undefined) =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes)
const bytesOf = (value: string) => new TextEncoder().encode(value)

describe("encodeCommand", () => {
  test("without arguments", () => {
    expect(text(encodeCommand("guest-ping"))).toBe('{"execute":"guest-ping"}\n')
  })

  test("with arguments", () => {
    expect(text(encodeCommand("guest-exec-status", { pid: 7 }))).toBe(
      '{"execute":"guest-exec-status","arguments":{"pid":7}}\n'
    )
  })
})

describe("encodeSyncDelimited", () => {
  test("starts with the delimiter byte", () => {
    const bytes = encodeSyncDelimited(42)
    expect(bytes[0]).toBe(SyncDelimiter)
    expect(text(bytes.subarray(1))).toBe(
      '{"execute":"guest-sync-delimited","arguments":{"id":42}}\n'
    )
  })
})

describe("parseReply", () => {
  test("return value", () => {
    expect(parseReply('{"return": {"pid": 3}}')).toEqual({ _tag: "Return", value: { pid: 3 } })
  })

  test("error with class and desc", () => {
    expect(parseReply('{"error": {"class": "GenericError", "desc": "no"}}')).toEqual({
      _tag: "Error",
      error: { class: "GenericError", desc: "no" }
    })
  })

  test("invalid JSON", () => {
    expect(parseReply("{not json")).toBeUndefined()
  })

  test("object without return or error", () => {
    expect(parseReply('{"event": "x"}')).toBeUndefined()
  })
})

describe("ByteQueue", () => {
  test("line split over chunks", () => {
    const queue = new ByteQueue()
    queue.push(bytesOf('{"ret'))
    expect(queue.takeLine()).toBeUndefined()
    queue.push(bytesOf('urn": 1}\n{"return"'))
    expect(text(queue.takeLine())).toBe('{"return": 1}')
    expect(queue.takeLine()).toBeUndefined()
    queue.push(bytesOf(": 2}\n"))
    expect(text(queue.takeLine())).toBe('{"return": 2}')
    expect(queue.size).toBe(0)
  })

  test("several lines in one chunk", () => {
    const queue = new ByteQueue()
    queue.push(bytesOf("a\nb\nc"))
    expect(text(queue.takeLine())).toBe("a")
    expect(text(queue.takeLine())).toBe("b")
    expect(queue.takeLine()).toBeUndefined()
    expect(queue.size).toBe(1)
  })

  test("discardThrough drops stale bytes", () => {
    const queue = new ByteQueue()
    queue.push(bytesOf('{"return": 1}\ngarbage'))
    queue.push(new Uint8Array([SyncDelimiter, ...bytesOf('{"return": 9}\n')]))
    expect(queue.discardThrough(SyncDelimiter)).toBe(true)
    expect(text(queue.takeLine())).toBe('{"return": 9}')
  })

  test("discardThrough without the byte empties the queue", () => {
    const queue = new ByteQueue()
    queue.push(bytesOf("stale"))
    expect(queue.discardThrough(SyncDelimiter)).toBe(false)
    expect(queue.size).toBe(0)
  })

  test("take and peek across chunks", () => {
    const queue = new ByteQueue()
    queue.push(new Uint8Array([1, 2]))
    queue.push(new Uint8Array([3, 4, 5]))
    expect(queue.take(6)).toBeUndefined()
    expect([...(queue.peek(3) ?? [])]).toEqual([1, 2, 3])
    expect(queue.size).toBe(5)
    expect([...(queue.take(4) ?? [])]).toEqual([1, 2, 3, 4])
    expect([...(queue.take(1) ?? [])]).toEqual([5])
    expect(queue.size).toBe(0)
  })

  test("long line arrives in many chunks", () => {
    const queue = new ByteQueue()
    const piece = "x".repeat(1000)
    for (let i = 0; i < 500; i++) {
      queue.push(bytesOf(piece))
      expect(queue.takeLine()).toBeUndefined()
    }
    queue.push(bytesOf("\n"))
    expect(queue.takeLine()?.length).toBe(500_000)
  })
})
