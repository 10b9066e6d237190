import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { readSnapshot } from "../../src/nvme/SysfsLive.ts"
import { onlySubsystem, subsystemIn } from "../../src/nvme/Sysfs.ts"
import { materialiseSysfs } from "../fixtures/fixtures.ts"

// Every captured sysfs tree (kernel 6.1, multipath on and off, live and reconnecting controllers):
// the one-subsystem read is exactly the full snapshot filtered to that subsystem, for every
// subsystem present and for one that is not.
const FIXTURES = new URL("../fixtures/sysfs", import.meta.url).pathname
const names = fs.readdirSync(FIXTURES).filter((f) => f.endsWith(".json")).map((f) => f.replace(/\.json$/, ""))

describe("readSnapshot of one subsystem", () => {
  it("equals the full snapshot restricted to it, on every captured tree", () => {
    assert.isAbove(names.length, 5, `sysfs fixtures under ${FIXTURES}`)
    let compared = 0
    for (const name of names) {
      const root = materialiseSysfs(name).root
      const full = readSnapshot(root)
      const nqns = new Set([...full.controllers.map((c) => c.subsysnqn), ...full.namespaces.map((n) => n.subsysnqn), "nqn.2014-08.org.example:absent"])
      for (const nqn of nqns) {
        assert.deepStrictEqual(readSnapshot(root, nqn), onlySubsystem(full, nqn), `${root} ${nqn}`)
        // The health pass's indexed lookup gives the same, in the same order.
        assert.deepStrictEqual(subsystemIn(full, nqn), onlySubsystem(full, nqn), `${root} ${nqn} (indexed)`)
        compared++
      }
    }
    assert.isAbove(compared, names.length)
  })

  it("reads only the subsysnqn of the other subsystems' controllers", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "sysfs-only-"))
    const ctrl = (name: string, nqn: string) => {
      const dir = path.join(root, "class/nvme", name)
      fs.mkdirSync(dir, { recursive: true })
      fs.writeFileSync(path.join(dir, "subsysnqn"), `${nqn}\n`)
      // An unreadable state file: reading it would be a SysfsError, so a skipped controller must never read it.
      fs.mkdirSync(path.join(dir, "state"))
    }
    ctrl("nvme0", "nqn.other")
    ctrl("nvme1", "nqn.other2")
    fs.mkdirSync(path.join(root, "class/nvme-subsystem"), { recursive: true })
    assert.deepStrictEqual(readSnapshot(root, "nqn.wanted"), { controllers: [], namespaces: [] })
    assert.throws(() => readSnapshot(root))
  })
})
