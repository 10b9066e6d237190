/**
 * Mounter over the host: blkid, mkfs, mount, umount, resize2fs and xfs_growfs are spawned
 * (execFile semantics through process/Command, `LC_ALL=C`, Settings.commandTimeout — mkfs gets
 * more — and a SIGKILL `forceKillAfter`), except that mounts whose options are all known
 * (MountCommands: a plain bind, isPlainBind; a file system, fsMountCall) and every unmount are
 * mount(2) and umount2(2) made by a fork of the spawn helper when it runs (process/Command
 * runCall: the same timeout, kill and tally, no exec of mount(8)); everything else is a
 * file-system call: mountinfo from /proc/self/mountinfo, statfs, lstat/stat, the in-use scan of
 * Settings.procRoot, device sizes from sysfs, tools looked up on PATH. The argv builders and
 * outcome classification are pure and live in MountCommands.ts; this file is the layer that
 * runs them.
 *
 * May import: effect, node:fs, node:path, domain, process/Command, process/Path,
 * process/SpawnHelper (types), mount/Mounter, mount/MountCommands, mount/Mountinfo, Settings.
 */
import { Duration, Effect, Layer, Result } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { FsType } from "../domain/Volume.ts"
import { type CommandOutput, type RunFailure, runCall, runCommand, tail } from "../process/Command.ts"
import type { HelperCall } from "../process/SpawnHelper.ts"
import { Settings } from "../Settings.ts"
import { type FsStats, type MountEntry, MountError, Mounter, type MountOptions, type PathKind, type ProbeOutput } from "./Mounter.ts"
import {
  callFailureDetail,
  classifyMount,
  classifyMountErrno,
  classifyUmount,
  classifyUmountErrno,
  devTOf,
  fsMountCall,
  isPlainBind,
  isReadOnly,
  mkfsArgv,
  MNT_DETACH,
  MS,
  mkfsTimeout,
  mountArgv,
  readOnlyRemountFlags,
  type Reason,
  resizeArgv,
  scanForeignMounts,
  scanHolders,
  TOOLS
} from "./MountCommands.ts"
import { type MalformedLine, parseMountinfo, parseMountinfoAt, topMountAt } from "./Mountinfo.ts"
import { onPath } from "../process/Path.ts"

const code = (e: unknown): string => (e as NodeJS.ErrnoException)?.code ?? ""

const io = (operation: string, target: string, reason: Reason = "Io") => (e: unknown) =>
  new MountError({ reason, operation, target, exitCode: undefined, detail: (e as Error)?.message ?? String(e) })

const sync = <A>(operation: string, target: string, f: () => A): Effect.Effect<A, MountError> =>
  Effect.try({ try: f, catch: io(operation, target) })

/** The rdev of a block device node, or why it is not one. */
const blockRdev = (device: string): bigint | "missing" | "not a block device" => {
  try {
    const st = fs.statSync(device, { bigint: true })
    return st.isBlockDevice() ? st.rdev : "not a block device"
  } catch (e) {
    if (code(e) === "ENOENT" || code(e) === "ENOTDIR") return "missing"
    throw e
  }
}

const runFailure = (operation: string, target: string, command: string, timeout: Duration.Duration) => (f: RunFailure) =>
  new MountError({
    reason: f._tag === "SpawnFailed" ? "Failed" : f._tag,
    operation,
    target,
    exitCode: undefined,
    detail: f._tag === "Timeout"
      ? `${command} gave no answer within ${Duration.format(timeout)}, killed`
      : f.detail.startsWith(`${command}: `) ? f.detail : `${command}: ${f.detail}`
  })

export const MounterLive: Layer.Layer<Mounter, never, Settings> = Layer.effect(
  Mounter,
  Effect.gen(function*() {
    const settings = yield* Settings
    const sysfsRoot = settings.sysfsRoot.replace(/\/+$/, "")

    /** execFile semantics; every failure to run (not a non-zero exit) is a MountError. */
    const run = (operation: string, target: string, command: string, args: ReadonlyArray<string>, timeout = settings.commandTimeout) =>
      runCommand(command, args, timeout).pipe(Effect.mapError(runFailure(operation, target, command, timeout)))

    const failed = (operation: string, target: string, out: CommandOutput, reason: Reason = "Failed") =>
      new MountError({ reason, operation, target, exitCode: out.exitCode, detail: tail(out.stderr || out.stdout) })

    const requireBlock = (operation: string, device: string) =>
      Effect.flatMap(sync(operation, device, () => blockRdev(device)), (r) =>
        typeof r === "bigint" ? Effect.succeed(r) : Effect.fail(new MountError({ reason: "Io", operation, target: device, exitCode: undefined, detail: r })))

    // blkid -p exits 2 with no output for "nothing found" but ALSO for a missing path or a
    // directory (util-linux 2.38): only a block device that is the same before and after the
    // probe may hand an exit 2 to Format.classifyProbe.
    const probe = Effect.fn("Mounter.probe")(function*(device: string) {
      const before = yield* requireBlock("probe", device)
      const out = yield* run("probe", device, "blkid", ["-p", "-o", "export", device])
      const after = yield* sync("probe", device, () => blockRdev(device))
      if (after !== before) {
        return yield* new MountError({ reason: "Io", operation: "probe", target: device, exitCode: out.exitCode, detail: `the device changed during the probe (${String(after)})` })
      }
      return out satisfies ProbeOutput
    })

    const mkfs = Effect.fn("Mounter.mkfs")(function*(device: string, fsType: FsType) {
      yield* requireBlock("mkfs", device)
      const [cmd, args] = mkfsArgv(device, fsType)
      const out = yield* run("mkfs", device, cmd, args, mkfsTimeout(settings.commandTimeout))
      if (out.exitCode !== 0) return yield* failed("mkfs", device, out)
    })

    // One read of the table, parsed whole (mountinfo) or at some mount points only (mountsAt).
    const readTable = (parse: (text: string) => Result.Result<ReadonlyArray<MountEntry>, MalformedLine>) =>
      Effect.gen(function*() {
        const text = yield* sync("mountinfo", "/proc/self/mountinfo", () => fs.readFileSync("/proc/self/mountinfo", "utf8"))
        const parsed = parse(text)
        if (Result.isFailure(parsed)) {
          const f = parsed.failure
          return yield* new MountError({ reason: "Io", operation: "mountinfo", target: "/proc/self/mountinfo", exitCode: undefined, detail: `line ${f.lineNumber}: ${f.why}: ${f.line.slice(0, 200)}` })
        }
        return parsed.success
      })
    const mountinfo = readTable(parseMountinfo).pipe(Effect.withSpan("Mounter.mountinfo"))
    const mountsAt = (points: ReadonlyArray<string>) => readTable((text) => parseMountinfoAt(text, points)).pipe(Effect.withSpan("Mounter.mountsAt"))

    /**
     * A mount(2)/umount2(2) made by the spawn helper's fork: true once made, false when the
     * helper cannot make it (the caller runs the command instead), a MountError by `classify`.
     */
    const made = (operation: string, target: string, c: HelperCall, classify: (errno: number) => Reason | "Ok") =>
      Effect.suspend(() => {
        const byCall = runCall(c, settings.commandTimeout)
        if (byCall === undefined) return Effect.succeed(false)
        return byCall.pipe(
          Effect.mapError(runFailure(operation, target, `${c.name}(2)`, settings.commandTimeout)),
          Effect.flatMap((out) => {
            const verdict = classify(out.exitCode)
            return verdict === "Ok"
              ? Effect.succeed(true)
              : Effect.fail(new MountError({ reason: verdict, operation, target, exitCode: undefined, detail: callFailureDetail(c, out.exitCode, out.stderr) }))
          })
        )
      })

    // A plain bind (no option but ro/rw) is two system calls at most: made by the spawn helper's
    // fork, without mount(8) and its libraries (~50 ms of NodePublish under the VM's emulation).
    const bindByCall = (source: string, target: string, readOnly: boolean) =>
      Effect.gen(function*() {
        if (!(yield* made("mount", target, { name: "mount", source, target, fsType: "", flags: MS.BIND, data: "" }, classifyMountErrno))) return false
        if (!readOnly) return true
        const top = topMountAt(yield* mountsAt([target]), target)
        const remount: HelperCall = { name: "mount", source, target, fsType: "", flags: readOnlyRemountFlags(top?.mountOptions ?? []), data: "" }
        // Never left read-write where read-only was asked for.
        const undo = Effect.ignore(unmount(target, false))
        if (yield* made("mount", target, remount, (errno) => errno === 0 ? "Ok" : "Failed").pipe(Effect.tapError(() => undo))) return true
        // The helper went away since the bind: mount(8) remounts it.
        const again = yield* run("mount", target, "mount", ["-o", "remount,bind,ro", target])
        if (again.exitCode === 0) return true
        yield* undo
        return yield* failed("mount", target, again)
      })

    const mount = Effect.fn("Mounter.mount")(function*(source: string, target: string, options: MountOptions) {
      if (isPlainBind(options)) {
        if (yield* bindByCall(source, target, isReadOnly(options))) return
      } else {
        const known = fsMountCall(options)
        if (known !== undefined && (yield* made("mount", target, { name: "mount", source, target, ...known }, classifyMountErrno))) return
      }
      const out = yield* run("mount", target, "mount", mountArgv(source, target, options))
      const verdict = classifyMount(out)
      if (verdict !== "Ok") return yield* failed("mount", target, out, verdict)
      if (options.bind && isReadOnly(options)) {
        // util-linux >= 2.27 remounts `-o bind,ro` read-only itself; older ones silently do not.
        const top = topMountAt(yield* mountsAt([target]), target)
        if (top === undefined || !top.mountOptions.includes("ro")) {
          const again = yield* run("mount", target, "mount", ["-o", "remount,bind,ro", target])
          if (again.exitCode !== 0) return yield* failed("mount", target, again)
        }
      }
    })

    const unmount = Effect.fn("Mounter.unmount")(function*(target: string, lazy: boolean) {
      if (yield* made("unmount", target, { name: "umount2", target, flags: lazy ? MNT_DETACH : 0 }, classifyUmountErrno)) return
      const out = yield* run("unmount", target, "umount", lazy ? ["-l", target] : [target])
      const verdict = classifyUmount(out)
      if (verdict !== "Ok") return yield* failed("unmount", target, out, verdict)
    })

    const resize = Effect.fn("Mounter.resize")(function*(device: string, fsType: FsType, mountPoint: string) {
      const [cmd, args] = resizeArgv(device, fsType, mountPoint)
      const out = yield* run("resize", mountPoint, cmd, args, mkfsTimeout(settings.commandTimeout))
      if (out.exitCode !== 0) return yield* failed("resize", mountPoint, out)
    })

    const statfs = Effect.fn("Mounter.statfs")(function*(p: string) {
      const s = yield* Effect.tryPromise({ try: () => fs.promises.statfs(p, { bigint: true }), catch: io("statfs", p) })
      const n = (b: bigint) => Number(b)
      return {
        totalBytes: n(s.blocks * s.bsize),
        availableBytes: n(s.bavail * s.bsize),
        usedBytes: n((s.blocks - s.bfree) * s.bsize),
        totalInodes: n(s.files),
        freeInodes: n(s.ffree),
        usedInodes: n(s.files - s.ffree)
      } satisfies FsStats
    })

    const foreignMounts = Effect.fn("Mounter.foreignMounts")(function*(devTs: ReadonlySet<string>) {
      return yield* sync("foreignMounts", "/proc/*/mountinfo", () => scanForeignMounts(settings.procRoot.replace(/\/+$/, ""), devTs))
    })
    const holders = Effect.fn("Mounter.holders")(function*(mountPoint: string) {
      return yield* sync("holders", mountPoint, () => scanHolders(settings.procRoot.replace(/\/+$/, ""), mountPoint))
    })

    const pathKind = Effect.fn("Mounter.pathKind")(function*(p: string) {
      return yield* sync("pathKind", p, (): PathKind => {
        try {
          const st = fs.lstatSync(p)
          return st.isDirectory() ? "directory" : st.isFile() ? "file" : st.isBlockDevice() ? "blockDevice" : "other"
        } catch (e) {
          if (code(e) === "ENOENT" || code(e) === "ENOTDIR") return "missing"
          throw e
        }
      })
    })

    const deviceNumber = Effect.fn("Mounter.deviceNumber")(function*(p: string) {
      const r = yield* sync("deviceNumber", p, () => blockRdev(p))
      return typeof r === "bigint" ? devTOf(r) : undefined
    })

    const fileSystemDevice = Effect.fn("Mounter.fileSystemDevice")(function*(p: string) {
      const st = yield* sync("fileSystemDevice", p, () => fs.statSync(p, { bigint: true, throwIfNoEntry: false }))
      return st === undefined ? undefined : devTOf(st.dev)
    })

    const makeDirectory = Effect.fn("Mounter.makeDirectory")(function*(p: string) {
      yield* sync("makeDirectory", p, () => fs.mkdirSync(p, { recursive: true, mode: 0o750 }))
    })

    const makeFile = Effect.fn("Mounter.makeFile")(function*(p: string) {
      yield* sync("makeFile", p, () => {
        fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o750 })
        // O_EXCL: never open (let alone truncate) whatever is already there, e.g. a bound device node
        try {
          fs.closeSync(fs.openSync(p, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o640))
        } catch (e) {
          if (code(e) !== "EEXIST") throw e
          if (fs.lstatSync(p).isDirectory()) throw new Error(`${p} is a directory`)
        }
      })
    })

    const removePath = Effect.fn("Mounter.removePath")(function*(p: string) {
      yield* Effect.try({
        try: () => {
          let st: fs.Stats
          try {
            st = fs.lstatSync(p)
          } catch (e) {
            if (code(e) === "ENOENT") return
            throw e
          }
          if (st.isDirectory()) fs.rmdirSync(p)
          else fs.unlinkSync(p)
        },
        catch: (e) => io("removePath", p, code(e) === "EBUSY" ? "Busy" : code(e) === "ENOTEMPTY" ? "Failed" : "Io")(e)
      })
    })

    const deviceSize = Effect.fn("Mounter.deviceSize")(function*(device: string) {
      return yield* sync("deviceSize", device, () => {
        const name = path.basename(fs.realpathSync(device))
        for (const dir of [`${sysfsRoot}/class/block/${name}`, `${sysfsRoot}/block/${name}`]) {
          try {
            const sectors = Number(fs.readFileSync(`${dir}/size`, "utf8").trim())
            if (Number.isFinite(sectors)) return sectors * 512
          } catch (e) {
            if (code(e) !== "ENOENT") throw e
          }
        }
        throw new Error(`no ${sysfsRoot}/class/block/${name}/size`)
      })
    })

    const missingTools = Effect.sync(() => TOOLS.filter((t) => onPath(t) === undefined))

    return Mounter.of({
      probe, mkfs, mount, unmount, resize, mountinfo, mountsAt, statfs, holders, foreignMounts, pathKind, deviceNumber,
      fileSystemDevice, makeDirectory, makeFile, removePath, deviceSize, missingTools
    })
  })
)

export const layer = MounterLive
