/**
 * Run by MountCalls.host.test.ts inside a private mount namespace (`unshare -m --propagation
 * private`), as root: the live mount layer's binds and unmounts made as system calls by the spawn
 * helper, with PATH emptied once the helper runs, so that a mount(8) or umount(8) run instead
 * would fail NotInstalled; and an ext4 file system mounted read-write and read-only on a loop
 * device when the host has loop devices. Prints one JSON object of what each step saw.
 *
 * Usage: node mountCalls.scenario.ts <scratch dir>
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { Mounter, type MountOptions } from "../../src/mount/Mounter.ts"
import { MounterLive } from "../../src/mount/MounterLive.ts"
import { CommandTally } from "../../src/process/Command.ts"
import { startSpawnHelper } from "../../src/process/SpawnHelper.ts"
import { Settings, testSettings } from "../../src/Settings.ts"

const dir = process.argv[2]!
const p = (name: string) => path.join(dir, name)
for (const d of ["a", "b", "s", "r", "empty-bin"]) fs.mkdirSync(p(d), { recursive: true })
fs.writeFileSync(p("a/file"), "in a\n")
fs.writeFileSync(p("file-target"), "")
// A source with per-mount flags of its own, made while mount(8) is still on PATH.
const tmpfs = spawnSync("mount", ["-t", "tmpfs", "-o", "nosuid,nodev,noexec,size=1m", "tmpfs", p("s")], { encoding: "utf8" })
if (tmpfs.status !== 0) throw new Error(`mount tmpfs: ${tmpfs.stderr}`)
// An ext4 on a loop device, when this host has loop devices (the VM's e2e stages real ones).
fs.mkdirSync(p("fs"))
fs.writeFileSync(p("fs.img"), "")
fs.truncateSync(p("fs.img"), 32 * 1024 * 1024)
const mkfs = spawnSync("mkfs.ext4", ["-q", "-F", p("fs.img")], { encoding: "utf8" })
if (mkfs.status !== 0) throw new Error(`mkfs.ext4: ${mkfs.stderr}`)
const loop = spawnSync("losetup", ["-f", "--show", p("fs.img")], { encoding: "utf8" })
const loopDevice = loop.status === 0 ? loop.stdout.trim() : undefined
const losetup = spawnSync("sh", ["-c", "command -v losetup"], { encoding: "utf8" }).stdout.trim()

const bind = (readOnly: boolean, options: ReadonlyArray<string> = []): MountOptions => ({ fsType: undefined, options, bind: true, readOnly })
const outcome = <A>(e: Effect.Effect<A, { readonly reason: string; readonly detail: string }>) =>
  Effect.match(e, { onFailure: (f) => ({ ok: false, reason: f.reason, detail: f.detail }), onSuccess: () => ({ ok: true }) })

const program = Effect.gen(function*() {
  const helper = startSpawnHelper()
  for (let i = 0; i < 250 && helper?.ready !== true; i++) yield* Effect.sleep("20 millis")
  const out: Record<string, unknown> = { helperReady: helper?.ready === true, calls: helper?.calls === true }
  process.env["PATH"] = p("empty-bin")
  const m = yield* Mounter
  const at = (point: string) => Effect.map(m.mountsAt([point]), (es) => es.map((e) => ({ options: e.mountOptions, fsType: e.fsType })))

  const tally = { count: 0, ms: 0 }
  out["bind"] = yield* outcome(m.mount(p("a"), p("b"), bind(false))).pipe(Effect.provideService(CommandTally, tally))
  out["bindTally"] = tally.count
  out["bindSeen"] = yield* at(p("b"))
  out["bindReads"] = fs.readFileSync(p("b/file"), "utf8")

  out["readOnly"] = yield* outcome(m.mount(p("s"), p("r"), bind(true)))
  out["readOnlySeen"] = yield* at(p("r"))
  out["readOnlyWrite"] = (() => {
    try {
      fs.writeFileSync(p("r/x"), "x")
      return "written"
    } catch (e) {
      return (e as NodeJS.ErrnoException).code
    }
  })()
  fs.writeFileSync(p("s/y"), "the source stays writable")
  out["sourceSeen"] = yield* at(p("s"))

  out["unmount"] = yield* outcome(m.unmount(p("b"), false))
  out["afterUnmount"] = yield* at(p("b"))
  out["unmountAgain"] = yield* outcome(m.unmount(p("b"), false))
  out["unmountMissing"] = yield* outcome(m.unmount(p("missing"), false))

  yield* m.mount(p("a"), p("b"), bind(false))
  const holder = spawn("/bin/sleep", ["30"], { cwd: p("b"), stdio: "ignore" })
  yield* Effect.sleep("200 millis")
  out["unmountBusy"] = yield* outcome(m.unmount(p("b"), false))
  out["unmountLazy"] = yield* outcome(m.unmount(p("b"), true))
  out["afterLazy"] = yield* at(p("b"))
  holder.kill("SIGKILL")

  out["missingSource"] = yield* outcome(m.mount(p("no-such-source"), p("b"), bind(false)))
  out["fileOnFile"] = yield* outcome(m.mount(p("a/file"), p("file-target"), bind(true)))
  out["fileOnFileSeen"] = yield* at(p("file-target"))
  out["fileOnFileReads"] = fs.readFileSync(p("file-target"), "utf8")
  out["fileOnFileUnmount"] = yield* outcome(m.unmount(p("file-target"), false))
  out["otherOption"] = yield* outcome(m.mount(p("a"), p("b"), bind(false, ["noexec"])))
  out["nul"] = yield* outcome(m.mount(p("a"), p("b") + "\0/etc", bind(false)))
  out["nulUnmount"] = yield* outcome(m.unmount(p("r") + "\0/etc", false))
  out["readOnlyUnmount"] = yield* outcome(m.unmount(p("r"), false))

  const ext4 = (options: ReadonlyArray<string>, readOnly: boolean): MountOptions => ({ fsType: "ext4", options, bind: false, readOnly })
  out["fsOnFile"] = yield* outcome(m.mount(p("fs.img"), p("fs"), ext4([], false)))
  out["loop"] = loopDevice ?? `unavailable: ${loop.stderr.trim()}`
  if (loopDevice !== undefined) {
    const seen = Effect.map(m.mountsAt([p("fs")]), (es) => es.map((e) => ({ options: e.mountOptions, fsType: e.fsType, source: e.source, superOptions: e.superOptions })))
    out["fsMount"] = yield* outcome(m.mount(loopDevice, p("fs"), ext4(["noatime", "discard", "rw"], false)))
    out["fsSeen"] = yield* seen
    fs.writeFileSync(p("fs/written"), "on the volume\n")
    out["fsAgain"] = yield* outcome(m.mount(loopDevice, p("fs"), ext4(["noatime", "discard", "rw"], false)))
    out["fsUnmount"] = yield* outcome(m.unmount(p("fs"), false))
    out["fsReadOnly"] = yield* outcome(m.mount(loopDevice, p("fs"), ext4(["rw"], true)))
    out["fsReadOnlySeen"] = yield* seen
    out["fsReadOnlyReads"] = fs.readFileSync(p("fs/written"), "utf8")
    out["fsReadOnlyUnmount"] = yield* outcome(m.unmount(p("fs"), false))
    out["fsWrongType"] = yield* outcome(m.mount(loopDevice, p("fs"), { ...ext4([], false), fsType: "xfs" }))
    out["fsOtherOption"] = yield* outcome(m.mount(loopDevice, p("fs"), ext4(["data=journal"], false)))
    spawnSync(losetup, ["-d", loopDevice])
  }
  return out
})

const result = await Effect.runPromise(program.pipe(Effect.provide(MounterLive.pipe(Layer.provide(Settings.layer(testSettings({})))))))
process.stdout.write(JSON.stringify(result) + "\n")
