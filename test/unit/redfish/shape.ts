/**
 * Checks a Redfish response against the rules of DSP0266 (the Redfish specification) that every
 * resource must follow, and returns the rules it breaks (an empty list when it follows them).
 */
export const shapeProblems = (document: unknown, path: string): Array<string> => {
  const problems: Array<string> = []
  if (typeof document !== "object" || document === null) return ["not a JSON object"]
  const resource = document as Record<string, unknown>
  const type = resource["@odata.type"]
  const id = resource["@odata.id"]
  const context = resource["@odata.context"]

  if (id !== path) problems.push(`@odata.id is ${JSON.stringify(id)}, expected ${path}`)
  // #Namespace.vMajor_Minor_Errata.Type, or #Namespace.Type for collections.
  const match =
    typeof type === "string" ? /^#([A-Za-z]+)(?:\.v\d+_\d+_\d+)?\.([A-Za-z]+)$/.exec(type) : null
  if (match === null) {
    problems.push(`@odata.type ${JSON.stringify(type)} is not #Namespace[.vX_Y_Z].Type`)
    return problems
  }
  const expectedContext = `/redfish/v1/$metadata#${match[1]}.${match[2]}`
  if (context !== expectedContext) {
    problems.push(`@odata.context is ${JSON.stringify(context)}, expected ${expectedContext}`)
  }
  if (typeof resource.Name !== "string") problems.push("Name is missing")

  if ((match[2] ?? "").endsWith("Collection")) {
    const members = resource.Members
    if (!Array.isArray(members)) {
      problems.push("Members is not an array")
    } else {
      if (resource["Members@odata.count"] !== members.length) {
        problems.push("Members@odata.count differs from the number of Members")
      }
      for (const member of members) {
        if (typeof member?.["@odata.id"] !== "string") problems.push("a member has no @odata.id")
      }
    }
  } else if (typeof resource.Id !== "string") {
    problems.push("Id is missing")
  } else if (!path.endsWith(`/${resource.Id}`) && path !== "/redfish/v1/") {
    problems.push(`Id ${resource.Id} is not the last segment of ${path}`)
  }

  const actions = resource.Actions as Record<string, { target?: unknown }> | undefined
  for (const [name, action] of Object.entries(actions ?? {})) {
    if (!name.startsWith("#")) problems.push(`action ${name} does not start with #`)
    const expectedTarget = `${path}/Actions/${name.slice(1)}`
    if (action.target !== expectedTarget && !String(action.target).endsWith(name.slice(1))) {
      problems.push(`action ${name} targets ${JSON.stringify(action.target)}`)
    }
  }
  return problems
}
