/**
 * Redfish error responses: an `error` object whose `@Message.ExtendedInfo` carries messages
 * of DMTF's Base message registry (DSP8011), so clients can match on the MessageId.
 */

/** The Base registry version the message ids below are taken from. */
export const baseRegistry = "Base.1.8.1"

interface MessageTemplate {
  readonly message: (...args: ReadonlyArray<string>) => string
  readonly severity: "OK" | "Warning" | "Critical"
  readonly resolution: string
}

/** The Base registry messages this service sends, with their text and resolution. */
const templates = {
  GeneralError: {
    message: () =>
      "A general error has occurred. See Resolution for information on how to resolve the error.",
    severity: "Critical",
    resolution: "None."
  },
  ResourceMissingAtURI: {
    message: (uri) => `The resource at the URI ${uri} was not found.`,
    severity: "Critical",
    resolution: "Place a valid resource at the URI or correct the URI and resubmit the request."
  },
  NoValidSession: {
    message: () => "There is no valid session established with the implementation.",
    severity: "Critical",
    resolution: "Establish a session before attempting any operations."
  },
  ActionNotSupported: {
    message: (action) => `The action ${action} is not supported by the resource.`,
    severity: "Critical",
    resolution:
      "The action supplied cannot be resubmitted to the implementation. Perhaps the action " +
      "was invalid, the wrong resource was the target or the implementation documentation " +
      "may be of assistance."
  },
  ActionParameterMissing: {
    message: (action, parameter) =>
      `The action ${action} requires the parameter ${parameter} to be present in the request body.`,
    severity: "Critical",
    resolution:
      "Supply the action with the required parameter in the request body when the request " +
      "is resubmitted."
  },
  ActionParameterValueNotInList: {
    message: (value, parameter, action) =>
      `The value ${value} for the parameter ${parameter} in the action ${action} is not in ` +
      "the list of acceptable values.",
    severity: "Warning",
    resolution:
      "Choose a value from the enumeration list that the implementation can support and " +
      "resubmit the request if the operation failed."
  },
  ActionParameterValueFormatError: {
    message: (value, parameter, action) =>
      `The value ${value} for the parameter ${parameter} in the action ${action} is of a ` +
      "different format than the parameter can accept.",
    severity: "Warning",
    resolution:
      "Correct the value for the parameter in the request body and resubmit the request if " +
      "the operation failed."
  },
  PropertyValueNotInList: {
    message: (value, property) =>
      `The value ${value} for the property ${property} is not in the list of acceptable values.`,
    severity: "Warning",
    resolution:
      "Choose a value from the enumeration list that the implementation can support and " +
      "resubmit the request if the operation failed."
  },
  PropertyUnknown: {
    message: (property) =>
      `The property ${property} is not in the list of valid properties for the resource.`,
    severity: "Warning",
    resolution:
      "Remove the unknown property from the request body and resubmit the request if the " +
      "operation failed."
  },
  MalformedJSON: {
    message: () =>
      "The request body submitted was malformed JSON and could not be parsed by the receiving " +
      "service.",
    severity: "Critical",
    resolution: "Ensure that the request body is valid JSON and resubmit the request."
  },
  PreconditionFailed: {
    message: () => "The ETag supplied did not match the ETag required to change this resource.",
    severity: "Critical",
    resolution: "Try the operation again using the appropriate ETag."
  },
  ResourceInUse: {
    message: () =>
      "The change to the requested resource failed because the resource is in use or in " +
      "transition.",
    severity: "Warning",
    resolution: "Remove the condition and resubmit the request if the operation failed."
  },
  CouldNotEstablishConnection: {
    message: (uri) => `The service failed to establish a connection with the URI ${uri}.`,
    severity: "Critical",
    resolution:
      "Ensure that the URI contains a valid and reachable node name, protocol information and " +
      "other URI components."
  }
} satisfies Record<string, MessageTemplate>

export type MessageId = keyof typeof templates

/** One entry of `@Message.ExtendedInfo` (Message.v1_1_1). */
export const messageObject = (id: MessageId, args: ReadonlyArray<string> = []) => {
  const template: MessageTemplate = templates[id]
  return {
    "@odata.type": "#Message.v1_1_1.Message",
    MessageId: `${baseRegistry}.${id}`,
    Message: template.message(...args),
    MessageArgs: args,
    Severity: template.severity,
    Resolution: template.resolution
  }
}

/**
 * The body of an error response. `detail` says what went wrong in this service's words; it
 * becomes the top-level message, and the registry message carries the machine-readable id.
 */
export const errorBody = (id: MessageId, args: ReadonlyArray<string> = [], detail?: string) => ({
  error: {
    code: `${baseRegistry}.${id}`,
    message: detail ?? (templates[id] as MessageTemplate).message(...args),
    "@Message.ExtendedInfo": [messageObject(id, args)]
  }
})
