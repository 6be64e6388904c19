import { describe, expect, test } from "bun:test"
import { splitArguments } from "../../../src/config/SplitArguments.ts"

describe("splitArguments", () => {
  const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
    ["", []],
    ["   ", []],
    ["-device virtio-keyboard-pci", ["-device", "virtio-keyboard-pci"]],
    ["  -a\t-b \n -c  ", ["-a", "-b", "-c"]],
    [`-name "my vm"`, ["-name", "my vm"]],
    [`-name 'my vm'`, ["-name", "my vm"]],
    [`'$HOME' "$HOME"`, ["$HOME", "$HOME"]],
    [`"say \\"hi\\""`, ['say "hi"']],
    [`"back\\\\slash"`, ["back\\slash"]],
    [`"keep \\n"`, ["keep \\n"]],
    [`'no \\escape'`, ["no \\escape"]],
    [`my\\ vm`, ["my vm"]],
    [`a"b c"d`, ["ab cd"]],
    [`"" ''`, ["", ""]],
    [`-append "console=ttyS0 root=/dev/vda1"`, ["-append", "console=ttyS0 root=/dev/vda1"]],
    ["a;b|c&&d", ["a;b|c&&d"]],
    ["trailing\\", ["trailing\\"]]
  ]
  for (const [line, args] of cases) {
    test(`splits ${JSON.stringify(line)}`, () => {
      expect(splitArguments(line)).toEqual({ args })
    })
  }

  test("unterminated double quote", () => {
    expect(splitArguments(`-name "my vm`)).toEqual({ error: 'unterminated " quote' })
  })

  test("unterminated single quote", () => {
    expect(splitArguments(`-name 'my vm`)).toEqual({ error: "unterminated ' quote" })
  })
})
