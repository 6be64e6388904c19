/**
 * The Redfish resources of one virtual machine, as JSON documents that follow DMTF's schemas
 * (DSP8010). Pure: each builder takes the machine's state and returns the document.
 */
import { createHash } from "node:crypto"
import type {
  BootOverride,
  InsertedMedia,
  MachineFacts,
  PowerState
} from "../runtime/MachineControl.ts"
import { bootTargets } from "../runtime/MachineControl.ts"

/** The Redfish specification (DSP0266) version this service follows. */
export const redfishVersion = "1.6.0"

/** `@odata.type` of every resource this service returns, with the schema version used. */
export const odataTypes = {
  serviceRoot: "#ServiceRoot.v1_5_0.ServiceRoot",
  systemCollection: "#ComputerSystemCollection.ComputerSystemCollection",
  system: "#ComputerSystem.v1_10_0.ComputerSystem",
  managerCollection: "#ManagerCollection.ManagerCollection",
  manager: "#Manager.v1_10_0.Manager",
  chassisCollection: "#ChassisCollection.ChassisCollection",
  chassis: "#Chassis.v1_14_0.Chassis",
  virtualMediaCollection: "#VirtualMediaCollection.VirtualMediaCollection",
  virtualMedia: "#VirtualMedia.v1_3_0.VirtualMedia",
  sessionService: "#SessionService.v1_1_8.SessionService",
  sessionCollection: "#SessionCollection.SessionCollection",
  session: "#Session.v1_3_0.Session"
} as const

/** The reset types `ComputerSystem.Reset` accepts. */
export const resetTypes = [
  "On",
  "ForceOff",
  "GracefulShutdown",
  "ForceRestart",
  "GracefulRestart",
  "PushPowerButton"
] as const
export type ResetType = (typeof resetTypes)[number]

/** The one manager: the launcher, which is this machine's BMC. */
export const managerId = "BMC"
/** The one virtual media device, a CD/DVD drive. */
export const virtualMediaId = "Cd"

const managerPath = `/redfish/v1/Managers/${managerId}`
const mediaPath = `${managerPath}/VirtualMedia/${virtualMediaId}`

/** URIs of the service's resources. */
export const paths = {
  root: "/redfish/v1/",
  metadata: "/redfish/v1/$metadata",
  odata: "/redfish/v1/odata",
  systems: "/redfish/v1/Systems",
  system: (id: string) => `/redfish/v1/Systems/${id}`,
  reset: (id: string) => `/redfish/v1/Systems/${id}/Actions/ComputerSystem.Reset`,
  managers: "/redfish/v1/Managers",
  manager: managerPath,
  virtualMediaCollection: `${managerPath}/VirtualMedia`,
  virtualMedia: mediaPath,
  insertMedia: `${mediaPath}/Actions/VirtualMedia.InsertMedia`,
  ejectMedia: `${mediaPath}/Actions/VirtualMedia.EjectMedia`,
  chassisCollection: "/redfish/v1/Chassis",
  chassis: (id: string) => `/redfish/v1/Chassis/${id}`,
  sessionService: "/redfish/v1/SessionService",
  sessions: "/redfish/v1/SessionService/Sessions",
  session: (id: string) => `/redfish/v1/SessionService/Sessions/${id}`
} as const

/** `Namespace.Type` of an `@odata.type` such as `#ComputerSystem.v1_10_0.ComputerSystem`. */
const qualifiedName = (odataType: string): string => {
  const parts = odataType.slice(1).split(".")
  return `${parts[0]}.${parts.at(-1)}`
}

/** The standard properties of every resource: type, id and the metadata context. */
const resource = (odataType: string, odataId: string) => ({
  "@odata.type": odataType,
  "@odata.id": odataId,
  "@odata.context": `${paths.metadata}#${qualifiedName(odataType)}`
})

const link = (odataId: string) => ({ "@odata.id": odataId })

const collection = (odataType: string, odataId: string, name: string, members: Array<string>) => ({
  ...resource(odataType, odataId),
  Name: name,
  "Members@odata.count": members.length,
  Members: members.map(link)
})

const healthy = { State: "Enabled", Health: "OK" } as const

/** Facts about this service that every resource builder needs. */
export interface ServiceIdentity {
  readonly systemId: string
  readonly facts: MachineFacts
  /** vm-runner's version, reported as the BMC firmware version. */
  readonly version: string
}

/**
 * A stable UUID for the service itself, derived from the machine's UUID so it survives
 * restarts without being the same as the system's (RFC 4122 name-based form, version 5).
 */
export const serviceUuid = (machineUuid: string): string => {
  const bytes = createHash("sha1").update(`vm-runner redfish ${machineUuid}`).digest()
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80
  const hex = bytes.subarray(0, 16).toString("hex")
  const groups = [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20)]
  return [...groups, hex.slice(20)].join("-")
}

export const versionsDocument = () => ({ v1: paths.root })

export const serviceRoot = (identity: ServiceIdentity) => ({
  ...resource(odataTypes.serviceRoot, paths.root),
  Id: "RootService",
  Name: "vm-runner Redfish service",
  RedfishVersion: redfishVersion,
  UUID: serviceUuid(identity.facts.uuid),
  Product: "vm-runner",
  Vendor: "vm-runner",
  ProtocolFeaturesSupported: {
    ExpandQuery: { ExpandAll: false, Levels: false, Links: false, NoLinks: false },
    ExcerptQuery: false,
    FilterQuery: false,
    OnlyMemberQuery: false,
    SelectQuery: false
  },
  Systems: link(paths.systems),
  Managers: link(paths.managers),
  Chassis: link(paths.chassisCollection),
  SessionService: link(paths.sessionService),
  Links: { Sessions: link(paths.sessions) }
})

/** The OData service document (DSP0266 "OData service document"). */
export const odataServiceDocument = () => ({
  "@odata.context": paths.metadata,
  value: [
    { name: "Service", kind: "Singleton", url: paths.root },
    { name: "Systems", kind: "Singleton", url: paths.systems },
    { name: "Managers", kind: "Singleton", url: paths.managers },
    { name: "Chassis", kind: "Singleton", url: paths.chassisCollection },
    { name: "SessionService", kind: "Singleton", url: paths.sessionService },
    { name: "Sessions", kind: "Singleton", url: paths.sessions }
  ]
})

const escapeXml = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/**
 * The CSDL metadata document: a reference to the DMTF schema file of every type the service
 * returns, so that `@odata.context` and `@odata.type` resolve.
 */
export const metadataDocument = (): string => {
  const references = Object.values(odataTypes).map((odataType) => {
    const [namespace = "", version] = odataType.slice(1).split(".")
    const includes = [namespace, ...(version?.startsWith("v") ? [`${namespace}.${version}`] : [])]
    const uri = `http://redfish.dmtf.org/schemas/v1/${namespace}_v1.xml`
    return [
      `  <edmx:Reference Uri="${escapeXml(uri)}">`,
      ...includes.map((include) => `    <edmx:Include Namespace="${escapeXml(include)}"/>`),
      "  </edmx:Reference>"
    ]
  })
  // The entity container of the service root's schema: ServiceRoot.v1_5_0.ServiceContainer.
  const container = odataTypes.serviceRoot.slice(1).replace(/\.ServiceRoot$/, ".ServiceContainer")
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">',
    ...references.flat(),
    "  <edmx:DataServices>",
    '    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="Service">',
    `      <EntityContainer Name="Service" Extends="${container}"/>`,
    "    </Schema>",
    "  </edmx:DataServices>",
    "</edmx:Edmx>",
    ""
  ].join("\n")
}

export const systemCollection = (identity: ServiceIdentity) =>
  collection(odataTypes.systemCollection, paths.systems, "Computer System Collection", [
    paths.system(identity.systemId)
  ])

/** The state a system resource shows. */
export interface SystemState {
  readonly power: PowerState
  readonly boot: BootOverride
}

export const system = (identity: ServiceIdentity, state: SystemState) => {
  const { facts, systemId } = identity
  return {
    ...resource(odataTypes.system, paths.system(systemId)),
    Id: systemId,
    Name: facts.name,
    SystemType: "Virtual",
    Manufacturer: "QEMU",
    Model: `${facts.arch} ${facts.machineType}`,
    UUID: facts.uuid,
    PowerState: state.power,
    Status: healthy,
    ProcessorSummary: { Count: facts.cpus, Status: healthy },
    MemorySummary: { TotalSystemMemoryGiB: facts.memoryMiB / 1024, Status: healthy },
    Boot: {
      BootSourceOverrideEnabled: state.boot.enabled,
      BootSourceOverrideTarget: state.boot.target,
      "BootSourceOverrideTarget@Redfish.AllowableValues": bootTargets,
      BootSourceOverrideMode: facts.bootMode,
      "BootSourceOverrideMode@Redfish.AllowableValues": [facts.bootMode]
    },
    Links: {
      Chassis: [link(paths.chassis(systemId))],
      ManagedBy: [link(paths.manager)]
    },
    Actions: {
      "#ComputerSystem.Reset": {
        target: paths.reset(systemId),
        "ResetType@Redfish.AllowableValues": resetTypes
      }
    }
  }
}

export const managerCollection = () =>
  collection(odataTypes.managerCollection, paths.managers, "Manager Collection", [paths.manager])

export const manager = (identity: ServiceIdentity) => ({
  ...resource(odataTypes.manager, paths.manager),
  Id: managerId,
  Name: `BMC of ${identity.facts.name}`,
  ManagerType: "BMC",
  Model: "vm-runner",
  FirmwareVersion: identity.version,
  UUID: serviceUuid(identity.facts.uuid),
  PowerState: "On",
  Status: healthy,
  VirtualMedia: link(paths.virtualMediaCollection),
  Links: {
    ManagerForServers: [link(paths.system(identity.systemId))],
    ManagerForChassis: [link(paths.chassis(identity.systemId))]
  }
})

export const virtualMediaCollection = () =>
  collection(
    odataTypes.virtualMediaCollection,
    paths.virtualMediaCollection,
    "Virtual Media Services",
    [paths.virtualMedia]
  )

/** Returns the file name at the end of a URL, which Redfish shows as `ImageName`. */
export const imageName = (url: string): string => {
  try {
    return decodeURIComponent(new URL(url).pathname.split("/").at(-1) ?? "")
  } catch {
    return ""
  }
}

export const virtualMedia = (media: InsertedMedia | undefined) => ({
  ...resource(odataTypes.virtualMedia, paths.virtualMedia),
  Id: virtualMediaId,
  Name: "Virtual CD",
  MediaTypes: ["CD", "DVD"],
  Image: media?.image ?? null,
  ImageName: media === undefined ? null : imageName(media.image),
  Inserted: media !== undefined,
  WriteProtected: true,
  ConnectedVia: media === undefined ? "NotConnected" : "URI",
  // The service downloads the whole image before attaching it, which Redfish calls Upload.
  TransferMethod: "Upload",
  TransferProtocolType:
    media === undefined ? null : media.image.startsWith("https:") ? "HTTPS" : "HTTP",
  Status: healthy,
  Actions: {
    "#VirtualMedia.InsertMedia": { target: paths.insertMedia },
    "#VirtualMedia.EjectMedia": { target: paths.ejectMedia }
  }
})

export const chassisCollection = (identity: ServiceIdentity) =>
  collection(odataTypes.chassisCollection, paths.chassisCollection, "Chassis Collection", [
    paths.chassis(identity.systemId)
  ])

export const chassis = (identity: ServiceIdentity, power: PowerState) => ({
  ...resource(odataTypes.chassis, paths.chassis(identity.systemId)),
  Id: identity.systemId,
  Name: `Chassis of ${identity.facts.name}`,
  ChassisType: "Other",
  Manufacturer: "QEMU",
  PowerState: power,
  Status: healthy,
  Links: {
    ComputerSystems: [link(paths.system(identity.systemId))],
    ManagedBy: [link(paths.manager)]
  }
})

export const sessionService = (timeoutSeconds: number) => ({
  ...resource(odataTypes.sessionService, paths.sessionService),
  Id: "SessionService",
  Name: "Session Service",
  ServiceEnabled: true,
  SessionTimeout: timeoutSeconds,
  Status: healthy,
  Sessions: link(paths.sessions)
})

export const sessionCollection = (sessionIds: ReadonlyArray<string>) =>
  collection(
    odataTypes.sessionCollection,
    paths.sessions,
    "Session Collection",
    sessionIds.map(paths.session)
  )

export const session = (id: string, userName: string) => ({
  ...resource(odataTypes.session, paths.session(id)),
  Id: id,
  Name: "User Session",
  UserName: userName,
  // Password is write-only: Redfish returns null on read.
  Password: null
})
