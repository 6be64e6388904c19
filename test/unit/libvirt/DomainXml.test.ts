import { describe, expect, test } from "bun:test"
import { XMLParser, XMLValidator } from "fast-xml-parser"
import { buildDomain } from "../../../src/libvirt/BuildDomain.ts"
import type { Domain } from "../../../src/libvirt/DomainModel.ts"
import { escapeAttribute, qemuNamespace, serializeDomain } from "../../../src/libvirt/DomainXml.ts"
import { makeInputs, makeShare } from "./fixtures.ts"

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false
})

/** A path with a space, an ampersand, both quotes, angle brackets and non-ASCII letters. */
const awkwardPath = `/data/Tom & Jerry's "VMs" <new>/Ünïcødé 虚拟机/disk.qcow2`

/** The default VM on passt, so that no QEMU arguments are needed. */
const withWorkDisk = (path: string): Domain =>
  buildDomain(makeInputs({ passt: true, workDisk: { path, format: "qcow2" } }))

describe("escapeAttribute", () => {
  test("escapes markup and single quotes", () => {
    expect(escapeAttribute(`a&b<c>d'e"f`)).toBe(`a&amp;b&lt;c&gt;d&apos;e"f`)
  })

  test("keeps tabs and line breaks as references", () => {
    expect(escapeAttribute("a\tb\nc\rd")).toBe("a&#9;b&#10;c&#13;d")
  })

  test("keeps non-ASCII as is", () => {
    expect(escapeAttribute("Ünïcødé 虚拟机")).toBe("Ünïcødé 虚拟机")
  })

  test("rejects characters XML cannot carry", () => {
    expect(() => escapeAttribute("a\u0001b")).toThrow(RangeError)
    expect(() => escapeAttribute("a\u001fb")).toThrow("control characters")
    expect(() => escapeAttribute("a\ud800b")).toThrow(RangeError)
  })
})

describe("serializeDomain", () => {
  test("output is well-formed XML", () => {
    const xml = serializeDomain(withWorkDisk(awkwardPath))
    expect(XMLValidator.validate(xml)).toBe(true)
  })

  test("awkward paths survive a parse", () => {
    const xml = serializeDomain(withWorkDisk(awkwardPath))
    const disks = parser.parse(xml).domain.devices.disk
    expect(disks[0].source["@file"]).toBe(awkwardPath)
  })

  test("text content is escaped", () => {
    const domain = withWorkDisk("/d.qcow2")
    const xml = serializeDomain({
      ...domain,
      os: {
        ...domain.os,
        loader: { readonly: "yes", secure: "no", type: "pflash", path: "/fw/a&b<c>.fd" }
      }
    })
    expect(xml).toContain(">/fw/a&amp;b&lt;c&gt;.fd</loader>")
    expect(parser.parse(xml).domain.os.loader["#text"]).toBe("/fw/a&b<c>.fd")
  })

  test("attributes use single quotes", () => {
    const xml = serializeDomain(withWorkDisk("/d.qcow2"))
    expect(xml.split("\n")[0]).toBe("<domain type='kvm'>")
    expect(xml).not.toContain('"')
  })

  test("no XML declaration, two-space indent, final newline", () => {
    const xml = serializeDomain(withWorkDisk("/d.qcow2"))
    expect(xml.startsWith("<?xml")).toBe(false)
    expect(xml).toContain("\n  <name>testvm</name>\n")
    expect(xml.endsWith("</domain>\n")).toBe(true)
  })

  test("top-level elements in libvirt's order", () => {
    const inputs = makeInputs({
      config: {
        filesystems: [makeShare()],
        devices: { hyperv: true, extraArgs: ["-no-hpet"] }
      }
    })
    const xml = serializeDomain(buildDomain(inputs))
    const names = [...xml.matchAll(/^ {2}<([a-z_:A-Z]+)/gm)].map((match) => match[1])
    expect(names).toEqual([
      "name",
      "uuid",
      "memory",
      "currentMemory",
      "memoryBacking",
      "vcpu",
      "iothreads",
      "os",
      "features",
      "cpu",
      "clock",
      "on_poweroff",
      "on_reboot",
      "on_crash",
      "pm",
      "devices",
      "qemu:commandline"
    ])
  })

  test("devices grouped in libvirt's order", () => {
    const inputs = makeInputs({
      passt: true,
      config: {
        boot: { tpm: true },
        filesystems: [makeShare()],
        graphics: { mode: "vnc" }
      }
    })
    const xml = serializeDomain(buildDomain(inputs))
    const devices = xml.slice(xml.indexOf("<devices>"), xml.indexOf("</devices>"))
    const names = [...devices.matchAll(/^ {4}<([a-z]+)/gm)].map((match) => match[1])
    const order = [...new Set(names)]
    expect(order).toEqual([
      "disk",
      "controller",
      "filesystem",
      "interface",
      "serial",
      "console",
      "channel",
      "input",
      "tpm",
      "graphics",
      "video",
      "memballoon",
      "rng"
    ])
  })

  test("qemu namespace only with QEMU arguments", () => {
    const plain = serializeDomain(buildDomain(makeInputs({ passt: true })))
    expect(plain).not.toContain("xmlns:qemu")
    expect(plain).not.toContain("qemu:commandline")

    const withArgs = serializeDomain(
      buildDomain(makeInputs({ passt: true, config: { devices: { extraArgs: ["-no-hpet"] } } }))
    )
    expect(withArgs.split("\n")[0]).toBe(`<domain type='kvm' xmlns:qemu='${qemuNamespace}'>`)
    expect(withArgs).toContain("<qemu:arg value='-no-hpet'/>")
  })

  test("QEMU arguments with quotes and JSON survive a parse", () => {
    const arg = `{"driver":"virtio-keyboard-pci","id":"it's <mine> & yours"}`
    const xml = serializeDomain(
      buildDomain(makeInputs({ passt: true, config: { devices: { extraArgs: ["-device", arg] } } }))
    )
    const args = parser.parse(xml).domain["qemu:commandline"]["qemu:arg"]
    expect(args.map((entry: Record<string, string>) => entry["@value"])).toEqual(["-device", arg])
  })

  test("empty QEMU argument list writes nothing", () => {
    const domain = buildDomain(makeInputs({ passt: true }))
    const xml = serializeDomain({ ...domain, qemuCommandline: { args: [] } })
    expect(xml).not.toContain("qemu:")
  })
})
