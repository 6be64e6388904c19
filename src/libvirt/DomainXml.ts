/**
 * Serializes a `Domain` to libvirt domain XML. Element order is fixed: top-level elements and
 * device groups come in the order `virsh dumpxml` prints them, so the two are easy to compare.
 * Output: UTF-8, two-space indent, single-quoted attributes, no XML declaration.
 */
import type {
  Domain,
  DomainAddressDrive,
  DomainChannel,
  DomainClock,
  DomainConsole,
  DomainController,
  DomainCpu,
  DomainDeviceBoot,
  DomainDevices,
  DomainDisk,
  DomainFeatureHyperV,
  DomainFeatureState,
  DomainFeatures,
  DomainFilesystem,
  DomainGraphics,
  DomainInput,
  DomainInterface,
  DomainMemory,
  DomainOs,
  DomainPm,
  DomainRng,
  DomainSerial,
  DomainTpm,
  DomainVideo
} from "./DomainModel.ts"

/** The XML namespace of libvirt's QEMU driver, for `<qemu:commandline>`. */
export const qemuNamespace = "http://libvirt.org/schemas/domain/qemu/1.0"

type AttributeValue = string | number | undefined
type Attributes = Readonly<Record<string, AttributeValue>>
type Child = XmlElement | undefined | false

interface XmlElement {
  readonly name: string
  readonly attributes: Attributes
  readonly children: ReadonlyArray<XmlElement>
  readonly text: string | undefined
}

const element = (
  name: string,
  attributes: Attributes = {},
  children: ReadonlyArray<Child> = []
): XmlElement => ({
  name,
  attributes,
  children: children.filter((child): child is XmlElement => child !== undefined && child !== false),
  text: undefined
})

const textElement = (name: string, text: string | number, attributes: Attributes = {}) => ({
  name,
  attributes,
  children: [],
  text: String(text)
})

/** An empty marker element such as `<readonly/>`, present only when `on` is true. */
const flag = (name: string, on: boolean): Child => on && element(name)

const stateElement = (name: string, feature: DomainFeatureState | undefined): Child =>
  feature !== undefined && element(name, { state: feature.state })

// ---------------------------------------------------------------------------------------------
// Escaping and writing

/**
 * Characters XML 1.0 cannot carry at all, not even as character references: C0 controls
 * other than tab, line feed and carriage return, lone surrogates, U+FFFE and U+FFFF.
 */
const forbiddenCharacter = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|\p{Cs}/u

const checkCharacters = (value: string): string => {
  if (forbiddenCharacter.test(value)) {
    throw new RangeError(
      `cannot write ${JSON.stringify(value)} to libvirt XML: XML 1.0 has no way to represent ` +
        "control characters other than tab and line breaks"
    )
  }
  return value
}

const textEntities: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;" }

const escapeText = (value: string): string =>
  checkCharacters(value).replace(/[&<>]/g, (character) => textEntities[character]!)

/** Attributes are single-quoted, so a double quote (common in JSON arguments) stays as is. */
const attributeEntities: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  "'": "&apos;",
  // NOTE: a parser turns a literal tab or line break inside an attribute into a space
  // (attribute-value normalization), so these are written as character references.
  "\t": "&#9;",
  "\n": "&#10;",
  "\r": "&#13;"
}

export const escapeAttribute = (value: string): string =>
  checkCharacters(value).replace(/[&<>'\t\n\r]/g, (character) => attributeEntities[character]!)

const renderAttributes = (attributes: Attributes): string =>
  Object.entries(attributes)
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([name, value]) => ` ${name}='${escapeAttribute(String(value))}'`)
    .join("")

const renderElement = (node: XmlElement, indent: string): string => {
  const open = `${indent}<${node.name}${renderAttributes(node.attributes)}`
  if (node.text !== undefined) return `${open}>${escapeText(node.text)}</${node.name}>\n`
  if (node.children.length === 0) return `${open}/>\n`
  const inner = node.children.map((child) => renderElement(child, `${indent}  `)).join("")
  return `${open}>\n${inner}${indent}</${node.name}>\n`
}

// ---------------------------------------------------------------------------------------------
// Top level

const memoryElement = (name: string, memory: DomainMemory) =>
  textElement(name, memory.value, { unit: memory.unit })

const osElement = (os: DomainOs): XmlElement =>
  element("os", {}, [
    textElement("type", os.type.value, { arch: os.type.arch, machine: os.type.machine }),
    os.loader !== undefined &&
      textElement("loader", os.loader.path, {
        readonly: os.loader.readonly,
        secure: os.loader.secure,
        type: os.loader.type
      }),
    os.nvram !== undefined && textElement("nvram", os.nvram.path, { template: os.nvram.template })
  ])

const hypervElement = (hyperv: DomainFeatureHyperV): XmlElement =>
  element("hyperv", { mode: hyperv.mode }, [
    stateElement("relaxed", hyperv.relaxed),
    stateElement("vapic", hyperv.vapic),
    hyperv.spinlocks !== undefined &&
      element("spinlocks", { state: hyperv.spinlocks.state, retries: hyperv.spinlocks.retries }),
    stateElement("vpindex", hyperv.vpindex),
    stateElement("runtime", hyperv.runtime),
    stateElement("synic", hyperv.synic),
    stateElement("stimer", hyperv.stimer),
    stateElement("reset", hyperv.reset),
    stateElement("frequencies", hyperv.frequencies),
    stateElement("tlbflush", hyperv.tlbflush),
    stateElement("ipi", hyperv.ipi),
    stateElement("evmcs", hyperv.evmcs),
    stateElement("avic", hyperv.avic)
  ])

const featuresElement = (features: DomainFeatures): XmlElement =>
  element("features", {}, [
    flag("acpi", features.acpi),
    flag("apic", features.apic),
    features.hyperv !== undefined && hypervElement(features.hyperv),
    features.gic !== undefined && element("gic", { version: features.gic.version }),
    stateElement("smm", features.smm)
  ])

const cpuElement = (cpu: DomainCpu): XmlElement =>
  cpu.mode === "custom"
    ? element("cpu", { mode: cpu.mode, match: cpu.match }, [
        textElement("model", cpu.model.value, { fallback: cpu.model.fallback })
      ])
    : element("cpu", { mode: cpu.mode })

const clockElement = (clock: DomainClock): XmlElement =>
  element(
    "clock",
    { offset: clock.offset },
    clock.timers.map((timer) =>
      element("timer", { name: timer.name, tickpolicy: timer.tickpolicy, present: timer.present })
    )
  )

const pmElement = (pm: DomainPm): XmlElement =>
  element("pm", {}, [
    element("suspend-to-mem", { enabled: pm.suspendToMem.enabled }),
    element("suspend-to-disk", { enabled: pm.suspendToDisk.enabled })
  ])

// ---------------------------------------------------------------------------------------------
// Devices

const bootElement = (boot: DomainDeviceBoot | undefined): Child =>
  boot !== undefined && element("boot", { order: boot.order })

const addressElement = (address: DomainAddressDrive | undefined): Child =>
  address !== undefined &&
  element("address", {
    type: address.type,
    controller: address.controller,
    bus: address.bus,
    target: address.target,
    unit: address.unit
  })

const diskElement = (disk: DomainDisk): XmlElement =>
  element("disk", { type: disk.type, device: disk.device }, [
    element("driver", {
      name: disk.driver.name,
      type: disk.driver.type,
      cache: disk.driver.cache,
      io: disk.driver.io,
      discard: disk.driver.discard,
      iothread: disk.driver.iothread
    }),
    element(
      "source",
      "file" in disk.source ? { file: disk.source.file } : { dev: disk.source.dev }
    ),
    element("target", { dev: disk.target.dev, bus: disk.target.bus }),
    disk.blockio !== undefined &&
      element("blockio", {
        logical_block_size: disk.blockio.logicalBlockSize,
        physical_block_size: disk.blockio.physicalBlockSize
      }),
    bootElement(disk.boot),
    flag("readonly", disk.readonly),
    addressElement(disk.address)
  ])

const controllerElement = (controller: DomainController): XmlElement =>
  element(
    "controller",
    { type: controller.type, index: controller.index, model: controller.model },
    [controller.driver !== undefined && element("driver", { iothread: controller.driver.iothread })]
  )

const filesystemElement = (filesystem: DomainFilesystem): XmlElement =>
  element("filesystem", { type: filesystem.type, accessmode: filesystem.accessmode }, [
    element("driver", { type: filesystem.driver.type }),
    filesystem.binary !== undefined &&
      element("binary", { path: filesystem.binary.path }, [
        filesystem.binary.sandbox !== undefined &&
          element("sandbox", { mode: filesystem.binary.sandbox })
      ]),
    element("source", { dir: filesystem.source.dir }),
    element("target", { dir: filesystem.target.dir }),
    flag("readonly", filesystem.readonly)
  ])

const interfaceElement = (nic: DomainInterface): XmlElement => {
  const source = nic.source
  return element("interface", { type: nic.type }, [
    element("mac", { address: nic.mac.address }),
    source !== undefined &&
      element(
        "source",
        "bridge" in source ? { bridge: source.bridge } : { dev: source.dev, mode: source.mode }
      ),
    element("model", { type: nic.model.type }),
    nic.backend !== undefined && element("backend", { type: nic.backend.type }),
    ...nic.portForwards.map((forward) =>
      element(
        "portForward",
        { proto: forward.proto },
        forward.ranges.map((range) => element("range", { start: range.start, to: range.to }))
      )
    ),
    nic.mtu !== undefined && element("mtu", { size: nic.mtu.size }),
    bootElement(nic.boot),
    nic.rom !== undefined && element("rom", { file: nic.rom.file })
  ])
}

const serialElement = (serial: DomainSerial): XmlElement =>
  element("serial", { type: serial.type }, [
    serial.log !== undefined &&
      element("log", { file: serial.log.file, append: serial.log.append }),
    element("target", { port: serial.target.port })
  ])

const consoleElement = (console: DomainConsole): XmlElement =>
  element("console", { type: console.type }, [
    element("target", { type: console.target.type, port: console.target.port })
  ])

const channelElement = (channel: DomainChannel): XmlElement =>
  element("channel", { type: channel.type }, [
    element("source", { mode: channel.source.mode }),
    element("target", { type: channel.target.type, name: channel.target.name })
  ])

const inputElement = (input: DomainInput): XmlElement =>
  element("input", { type: input.type, bus: input.bus })

const tpmElement = (tpm: DomainTpm): XmlElement =>
  element("tpm", { model: tpm.model }, [
    element("backend", {
      type: tpm.backend.type,
      version: tpm.backend.version,
      persistent_state: tpm.backend.persistentState
    })
  ])

const graphicsElement = (graphics: DomainGraphics): XmlElement =>
  graphics.type === "vnc"
    ? element(
        "graphics",
        {
          type: graphics.type,
          port: graphics.port,
          autoport: graphics.autoport,
          keymap: graphics.keymap,
          passwd: graphics.passwd
        },
        [element("listen", { type: graphics.listen.type, address: graphics.listen.address })]
      )
    : element("graphics", { type: graphics.type }, [
        element("gl", { rendernode: graphics.gl.rendernode })
      ])

const videoElement = (video: DomainVideo): XmlElement => {
  const model = video.model
  return element("video", {}, [
    element("model", { type: model.type, heads: model.heads, primary: model.primary }, [
      model.acceleration !== undefined &&
        element("acceleration", { accel3d: model.acceleration.accel3d })
    ])
  ])
}

const rngElement = (rng: DomainRng): XmlElement =>
  element("rng", { model: rng.model }, [
    textElement("backend", rng.backend.path, { model: rng.backend.model })
  ])

const devicesElement = (devices: DomainDevices): XmlElement =>
  element("devices", {}, [
    ...devices.disks.map(diskElement),
    ...devices.controllers.map(controllerElement),
    ...devices.filesystems.map(filesystemElement),
    ...devices.interfaces.map(interfaceElement),
    ...devices.serials.map(serialElement),
    ...devices.consoles.map(consoleElement),
    ...devices.channels.map(channelElement),
    ...devices.inputs.map(inputElement),
    ...devices.tpms.map(tpmElement),
    ...devices.graphics.map(graphicsElement),
    ...devices.videos.map(videoElement),
    element("memballoon", { model: devices.memballoon.model }),
    ...devices.rngs.map(rngElement)
  ])

const domainElement = (domain: Domain): XmlElement => {
  const commandline = domain.qemuCommandline
  const withQemuArgs = commandline !== undefined && commandline.args.length > 0
  return element(
    "domain",
    { type: domain.type, "xmlns:qemu": withQemuArgs ? qemuNamespace : undefined },
    [
      textElement("name", domain.name),
      textElement("uuid", domain.uuid),
      memoryElement("memory", domain.memory),
      memoryElement("currentMemory", domain.currentMemory),
      domain.memoryBacking !== undefined &&
        element("memoryBacking", {}, [
          element("source", { type: domain.memoryBacking.source.type }),
          element("access", { mode: domain.memoryBacking.access.mode })
        ]),
      textElement("vcpu", domain.vcpu.value, { placement: domain.vcpu.placement }),
      domain.iothreads !== undefined && textElement("iothreads", domain.iothreads),
      osElement(domain.os),
      featuresElement(domain.features),
      cpuElement(domain.cpu),
      clockElement(domain.clock),
      textElement("on_poweroff", domain.onPoweroff),
      textElement("on_reboot", domain.onReboot),
      textElement("on_crash", domain.onCrash),
      domain.pm !== undefined && pmElement(domain.pm),
      devicesElement(domain.devices),
      withQemuArgs &&
        element(
          "qemu:commandline",
          {},
          commandline.args.map((arg) => element("qemu:arg", { value: arg }))
        )
    ]
  )
}

/** Serializes a domain to the XML that `virsh define` reads. */
export const serializeDomain = (domain: Domain): string => renderElement(domainElement(domain), "")
