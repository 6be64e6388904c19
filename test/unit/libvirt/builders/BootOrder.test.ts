import { describe, expect, test } from "bun:test"
import { planBootOrder } from "../../../../src/libvirt/builders/BootOrder.ts"
import { makeInputs, makeNic, makeNetwork as network } from "../fixtures.ts"

describe("planBootOrder", () => {
  test("default order boots the work disk", () => {
    const plan = planBootOrder(makeInputs())
    expect(plan.workDisk).toBe(1)
    expect(plan.installCdrom).toBeUndefined()
    expect(plan.nics.size).toBe(0)
  })

  test("cdrom counts only with an installer ISO", () => {
    const withoutIso = planBootOrder(makeInputs({ config: { boot: { order: ["cdrom", "hd"] } } }))
    expect(withoutIso.installCdrom).toBeUndefined()
    expect(withoutIso.workDisk).toBe(1)

    const withIso = planBootOrder(
      makeInputs({ installIso: "/images/a.iso", config: { boot: { order: ["cdrom", "hd"] } } })
    )
    expect(withIso.installCdrom).toBe(1)
    expect(withIso.workDisk).toBe(2)
  })

  test("each bootable NIC gets its own number", () => {
    const plan = planBootOrder(
      makeInputs({
        config: {
          boot: { order: ["network", "hd"] },
          network: network([
            makeNic({ index: 1, boot: true }),
            makeNic({ index: 2, boot: false }),
            makeNic({ index: 3, boot: true })
          ])
        }
      })
    )
    expect(plan.nics.get(1)).toBe(1)
    expect(plan.nics.get(2)).toBeUndefined()
    expect(plan.nics.get(3)).toBe(2)
    expect(plan.workDisk).toBe(3)
  })

  test("network without a marked NIC boots NIC 1", () => {
    const plan = planBootOrder(
      makeInputs({
        config: {
          boot: { order: ["hd", "network"] },
          network: network([makeNic({ index: 1 }), makeNic({ index: 2 })])
        }
      })
    )
    expect(plan.workDisk).toBe(1)
    expect([...plan.nics]).toEqual([[1, 2]])
  })

  test("marked NIC outside BOOT_ORDER comes last", () => {
    const plan = planBootOrder(
      makeInputs({
        installIso: "/images/a.iso",
        config: {
          boot: { order: ["cdrom", "hd"] },
          network: network([makeNic({ index: 1 }), makeNic({ index: 2, boot: true })])
        }
      })
    )
    expect(plan.installCdrom).toBe(1)
    expect(plan.workDisk).toBe(2)
    expect([...plan.nics]).toEqual([[2, 3]])
  })

  test("numbers are unique across every device", () => {
    const plan = planBootOrder(
      makeInputs({
        installIso: "/images/a.iso",
        config: {
          boot: { order: ["network", "cdrom", "hd"] },
          network: network([1, 2, 3, 4].map((index) => makeNic({ index, boot: true })))
        }
      })
    )
    const numbers = [plan.workDisk, plan.installCdrom, ...plan.nics.values()]
    expect(new Set(numbers).size).toBe(numbers.length)
    expect(numbers.toSorted((a, b) => (a ?? 0) - (b ?? 0))).toEqual([1, 2, 3, 4, 5, 6])
  })
})
