import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Result } from "effect"
import * as fs from "node:fs"
import type { Nqn } from "../../src/domain/Ids.ts"
import { volumeTarget } from "../../src/domain/Volume.ts"
import { identityOf, resolveIn, sameIdentity } from "../../src/nvme/DeviceResolver.ts"
import { byDeviceName, type NvmeSnapshot, Sysfs } from "../../src/nvme/Sysfs.ts"
import { parseAddress, parseCtrlLossTmo, traddrOf } from "../../src/nvme/SysfsAttributes.ts"
import { parseState, readSnapshot, SysfsLive } from "../../src/nvme/SysfsLive.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { materialiseSysfs } from "../fixtures/fixtures.ts"

const VOL1 = "nqn.2014-08.io.rds-csi.e2e:vol1" as Nqn
const VOL2 = "nqn.2014-08.io.rds-csi.e2e:vol2" as Nqn
// nvmet.sh gives each namespace nguid = md5("<nqn>/<nsid>"), uuid derived from it
const NGUID_VOL1 = "a3c5fa9cfd726d3e6d9d528055c24900"

const withTree = <A, E>(name: string, f: (root: string, tree: ReturnType<typeof materialiseSysfs>) => Effect.Effect<A, E, Sysfs>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => materialiseSysfs(name)),
    (tree) => f(tree.root, tree).pipe(Effect.provide(SysfsLive.pipe(Layer.provide(Settings.layer(testSettings({ sysfsRoot: tree.root })))))),
    (tree) => Effect.sync(tree.cleanup)
  )

const snapshotOf = (name: string) => withTree(name, () => Effect.flatMap(Sysfs, (s) => s.snapshot))

const names = (s: NvmeSnapshot) => ({
  controllers: s.controllers.map((c) => `${c.name} ${c.state} ${c.subsystem}`),
  namespaces: s.namespaces.map((n) => `${n.name} ${n.devT} nsid=${n.nsid} [${n.controllers.join(",")}]`)
})

describe("SysfsLive over sysfs trees captured from kernel 6.1", () => {
  it.effect("multipath on: heads of nvme-subsysN are the devices; hidden per-path devices are not", () =>
    Effect.gen(function*() {
      const snap = yield* snapshotOf("mp-on.live")
      assert.deepStrictEqual(names(snap), {
        controllers: ["nvme0 live nvme-subsys0", "nvme1 live nvme-subsys1"],
        namespaces: ["nvme0n1 259:1 nsid=1 [nvme0]", "nvme1n1 259:3 nsid=1 [nvme1]", "nvme1n2 259:5 nsid=2 [nvme1]"]
      })
      const c0 = snap.controllers[0]!
      assert.deepStrictEqual(
        [c0.subsysnqn, c0.transport, c0.traddr, c0.trsvcid, c0.ctrlLossTmo],
        [VOL1, "tcp", "127.0.0.1", "4420", 30]
      )
      assert.strictEqual(snap.controllers[1]!.ctrlLossTmo, -1, "ctrl_loss_tmo 'off' (connected with -1)")
      const ns = snap.namespaces[0]!
      assert.strictEqual(ns.subsysnqn, VOL1)
      assert.strictEqual(ns.nguid, NGUID_VOL1)
      assert.strictEqual(ns.uuid, "a3c5fa9c-fd72-4d3e-8d9d-528055c24900")
      assert.strictEqual(ns.wwid, "uuid.a3c5fa9c-fd72-4d3e-8d9d-528055c24900")
      assert.strictEqual(ns.sizeBytes, 256 * 1024 * 1024)
      assert.isFalse(snap.namespaces.some((n) => /c\d+n/.test(n.name)))
    }))

  it.effect("multipath off: namespaces live in the controller's directory", () =>
    Effect.gen(function*() {
      const snap = yield* snapshotOf("mp-off.live")
      assert.deepStrictEqual(names(snap), {
        controllers: ["nvme0 live nvme-subsys0", "nvme1 live nvme-subsys1"],
        namespaces: ["nvme0n1 259:0 nsid=1 [nvme0]", "nvme1n1 259:1 nsid=1 [nvme1]", "nvme1n2 259:2 nsid=2 [nvme1]"]
      })
      assert.strictEqual(snap.namespaces[0]!.nguid, NGUID_VOL1)
      assert.strictEqual(snap.namespaces[2]!.subsysnqn, VOL2)
    }))

  it.effect("a controller reconnecting keeps its head and reports connecting", () =>
    Effect.gen(function*() {
      const snap = yield* snapshotOf("mp-on.connecting")
      const c0 = snap.controllers.find((c) => c.name === "nvme0")!
      assert.strictEqual(c0.state, "connecting")
      assert.strictEqual(c0.traddr, "127.0.0.1")
      assert.isTrue(snap.namespaces.some((n) => n.name === "nvme0n1" && n.subsysnqn === VOL1))
    }))

  it.effect("after ctrl_loss_tmo the controller and its head are gone, the empty subsystem is not a device", () =>
    Effect.gen(function*() {
      const snap = yield* snapshotOf("mp-on.deleted")
      assert.deepStrictEqual(names(snap), {
        controllers: ["nvme1 live nvme-subsys1"],
        namespaces: ["nvme1n1 259:3 nsid=1 [nvme1]", "nvme1n2 259:5 nsid=2 [nvme1]"]
      })
      const err = resolveIn(snap, VOL1, { nsid: undefined, nguid: undefined, uuid: undefined })
      assert.strictEqual(Result.getOrThrow(Result.flip(Effect.runSync(Effect.result(err)))).reason, "NoController")
    }))

  it.effect("renumbered with multipath: nvme0 → nvme2 and nvme0n1 → nvme0n2, same identity, resolvable by nguid", () =>
    Effect.gen(function*() {
      const before = yield* snapshotOf("mp-on.live")
      const after = yield* snapshotOf("mp-on.renumbered")
      assert.deepStrictEqual(names(after).namespaces[0], "nvme0n2 259:6 nsid=1 [nvme2]")
      assert.strictEqual(after.controllers.find((c) => c.subsysnqn === VOL1)?.name, "nvme2")
      const target = Result.getOrThrow(volumeTarget({
        nqn: VOL1,
        nvmeAddress: "127.0.0.1",
        nvmePort: "4420",
        nguid: "A3C5FA9C-FD72-6D3E-6D9D-528055C24900"
      }))
      const old = yield* resolveIn(before, VOL1, target.namespace)
      const now = yield* resolveIn(after, VOL1, target.namespace)
      assert.deepStrictEqual([old.name, now.name], ["nvme0n1", "nvme0n2"])
      assert.notStrictEqual(old.devT, now.devT)
      assert.isTrue(sameIdentity(identityOf(old), identityOf(now)))
    }))

  it.effect("renumbered without multipath and after disconnect", () =>
    Effect.gen(function*() {
      const after = yield* snapshotOf("mp-off.renumbered")
      assert.deepStrictEqual(names(after).controllers, ["nvme0 live nvme-subsys0", "nvme1 live nvme-subsys1"])
      const none = yield* snapshotOf("mp-on.disconnected")
      assert.deepStrictEqual(names(none), { controllers: [], namespaces: [] })
    }))

  it.effect("blockDevT and fabricsAvailable", () =>
    withTree("mp-on.live", () =>
      Effect.gen(function*() {
        const sysfs = yield* Sysfs
        assert.strictEqual(yield* sysfs.blockDevT("nvme0n1"), "259:1")
        assert.strictEqual(yield* sysfs.blockDevT("nvme7n1"), undefined)
        assert.strictEqual(yield* sysfs.blockDevT("../../etc"), undefined)
        assert.isTrue(yield* sysfs.fabricsAvailable)
      })))

  it.effect("no NVMe at all: empty snapshot, no fabrics", () =>
    Effect.gen(function*() {
      const sysfs = yield* Sysfs
      assert.deepStrictEqual(yield* sysfs.snapshot, { controllers: [], namespaces: [] })
      assert.isFalse(yield* sysfs.fabricsAvailable)
    }).pipe(Effect.provide(SysfsLive.pipe(Layer.provide(Settings.layer(testSettings({ sysfsRoot: "/nonexistent-sysfs" })))))))

  it("removing any single file or directory (the kernel deleting it mid-read) never fails and never invents", () => {
    const full = (() => {
      const t = materialiseSysfs("mp-on.live")
      try {
        return readSnapshot(t.root)
      } finally {
        t.cleanup()
      }
    })()
    const probe = materialiseSysfs("mp-on.live")
    const rels = listTree(probe.root)
    probe.cleanup()
    assert.isAbove(rels.length, 50)
    for (const rel of rels) {
      const t = materialiseSysfs("mp-on.live")
      try {
        t.remove(rel)
        const snap = readSnapshot(t.root)
        for (const c of snap.controllers) {
          const f = full.controllers.find((x) => x.name === c.name)
          assert.isDefined(f, `${rel}: invented controller ${c.name}`)
          assert.deepStrictEqual([c.state, c.subsysnqn], [f!.state, f!.subsysnqn], rel)
        }
        for (const n of snap.namespaces) {
          const f = full.namespaces.find((x) => x.name === n.name)
          assert.isDefined(f, `${rel}: invented namespace ${n.name}`)
          assert.deepStrictEqual([n.devT, n.nsid, n.subsysnqn, n.sizeBytes], [f!.devT, f!.nsid, f!.subsysnqn, f!.sizeBytes], rel)
          if (n.nguid !== undefined) assert.strictEqual(n.nguid, f!.nguid, rel)
        }
      } finally {
        t.cleanup()
      }
    }
  })

  it.effect("an attribute that exists but cannot be read is a SysfsError, not a silent gap", () =>
    withTree("mp-on.live", (root) =>
      Effect.gen(function*() {
        const state = `${root}/devices/virtual/nvme-fabrics/ctl/nvme0/state`
        fs.rmSync(state)
        fs.mkdirSync(state) // EISDIR on read
        const err = yield* Effect.flip((yield* Sysfs).snapshot)
        assert.strictEqual(err._tag, "SysfsError")
        assert.include(err.path, "nvme0/state")
      })))

  it("parses the attributes' formats", () => {
    assert.deepStrictEqual([...parseAddress("traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1")], [
      ["traddr", "127.0.0.1"], ["trsvcid", "4420"], ["src_addr", "127.0.0.1"]
    ])
    assert.strictEqual(parseAddress("traddr=fe80::1%eth0,trsvcid=4420").get("traddr"), "fe80::1%eth0")
    // The kernel echoes traddr as nvme-cli gave it; volume targets hold IPv6 canonical, so sysfs's must be too.
    assert.strictEqual(traddrOf(parseAddress("traddr=FD00:0:0::0005,trsvcid=4420,src_addr=fd00::9")), "fd00::5")
    assert.strictEqual(traddrOf(parseAddress("traddr=FE80::1%eth0,trsvcid=4420")), "fe80::1%eth0")
    assert.strictEqual(traddrOf(parseAddress("traddr=127.0.0.1,trsvcid=4420")), "127.0.0.1")
    assert.strictEqual(traddrOf(parseAddress("trsvcid=4420")), undefined)
    assert.deepStrictEqual([parseCtrlLossTmo("off"), parseCtrlLossTmo("600"), parseCtrlLossTmo("")], [-1, 600, undefined])
    assert.deepStrictEqual([parseState("deleting (no IO)"), parseState("something new")], ["deleting (no IO)", "new"])
  })
})

const listTree = (root: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(`${root}/${rel}`, { withFileTypes: true })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`
      out.push(r)
      if (e.isDirectory()) walk(r)
    }
  }
  walk("")
  return out
}

describe("byDeviceName", () => {
  it("orders device names as the ICU collator with numeric collation did, on every pair", () => {
    const names: Array<string> = []
    for (let c = 0; c <= 130; c++) names.push(`nvme${c}`)
    for (let c = 0; c <= 30; c++) for (let n = 1; n <= 3; n++) names.push(`nvme${c}n${n}`)
    for (let c = 0; c <= 12; c++) for (let p = 0; p <= 12; p++) for (let n = 1; n <= 2; n++) names.push(`nvme${c}c${p}n${n}`)
    const collator = new Intl.Collator("en", { numeric: true })
    let pairs = 0
    for (const a of names) {
      for (const b of names) {
        assert.strictEqual(Math.sign(byDeviceName(a, b)), Math.sign(collator.compare(a, b)), `${a} vs ${b}`)
        pairs++
      }
    }
    assert.strictEqual(pairs, names.length ** 2)
    assert.deepStrictEqual(["nvme10", "nvme2", "nvme3n1", "nvme3c3n1", "nvme1"].sort(byDeviceName), ["nvme1", "nvme2", "nvme3c3n1", "nvme3n1", "nvme10"])
  })
})
