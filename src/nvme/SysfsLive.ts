/**
 * Sysfs over the real kernel files under Settings.sysfsRoot: plain synchronous reads of small
 * attribute files (a snapshot is a few dozen of them, microseconds each, no process).
 *
 * Layout (kernel 6.1, captured in test/fixtures/sysfs):
 *   class/nvme/nvmeC                       controller: state, subsysnqn, transport, address, ctrl_loss_tmo
 *   class/nvme/nvmeC/nvmeSnN               namespace block device when multipath is off
 *   class/nvme/nvmeC/nvmeScCnH             hidden per-path device when multipath is on (not for users)
 *   class/nvme-subsystem/nvme-subsysS      subsysnqn, a link per member controller (nvmeC),
 *   class/nvme-subsystem/nvme-subsysS/nvmeSnH   the multipath head: dev, size, nsid, nguid, uuid, wwid
 * A controller or namespace that vanishes mid-read (the kernel deleting it) is left out of the
 * snapshot, never an error; only an unreadable file that exists is a SysfsError.
 * The state reader (the health monitor's watch) keeps `class/nvme/nvmeC/state` open and re-reads
 * it at offset 0, where kernfs runs the attribute's show() again: one pread per controller per poll.
 *
 * May import: effect, nvme/Sysfs, nvme/SysfsAttributes, nvme/SysfsWatch, Settings.
 */
import { Duration, Effect, Layer } from "effect"
import * as fs from "node:fs"
import { Settings } from "../Settings.ts"
import { byDeviceName, type Controller, type NamespaceDevice, type NvmeSnapshot, type StateReader, Sysfs, SysfsError } from "./Sysfs.ts"
import { FixedAttributes, fail, Gone, list, normaliseNguid, parseAddress, parseCtrlLossTmo, readAll, readAttr, traddrOf } from "./SysfsAttributes.ts"
import { CONTROLLER, deviceChange, openStateFiles, parseState, watchDevices } from "./SysfsWatch.ts"

export { deviceChange, openStateFiles, parseState, watchDevices } from "./SysfsWatch.ts"

const NAMESPACE = /^nvme\d+n\d+$/
const PATH_DEVICE = /^nvme(\d+)c(\d+)n(\d+)$/

interface RawController extends Controller {
  /** Namespace block devices in the controller's own directory (multipath off). */
  readonly namespaces: ReadonlyArray<string>
  /** Heads (`nvmeSnH`) this controller has a hidden path device for (multipath on). */
  readonly pathHeads: ReadonlyArray<string>
}

const CONTROLLER_FIXED = ["subsysnqn", "transport", "address"] as const
const NAMESPACE_FIXED = ["dev", "nsid", "nguid", "uuid", "wwid"] as const
const SUBSYSTEM_FIXED = ["subsysnqn"] as const

const readController = (dir: string, name: string, only: string | undefined, fixed: FixedAttributes | undefined): Omit<RawController, "subsystem"> | undefined => {
  // A controller being set up can show values that are not its final ones (a subsystem NQN
  // before it is identified): they are kept only once it has been seen live with them.
  const got = fixed === undefined ? readAll(dir, CONTROLLER_FIXED) : fixed.read(dir, CONTROLLER_FIXED, () => false)
  if (got === Gone) return undefined
  const [subsysnqn, transport, address] = got as [string | Gone, string | Gone, string | Gone]
  if (only !== undefined && subsysnqn !== only) return undefined
  const state = readAttr(`${dir}/state`)
  if (state === Gone || subsysnqn === Gone || transport === Gone) return undefined
  if (state === "live") fixed?.keep(dir)
  const tmo = readAttr(`${dir}/ctrl_loss_tmo`)
  const entries = list(dir)
  if (entries === Gone) return undefined
  const fields = address === Gone ? new Map<string, string>() : parseAddress(address)
  const namespaces: Array<string> = []
  const pathHeads: Array<string> = []
  for (const e of entries) {
    if (NAMESPACE.test(e)) namespaces.push(e)
    const m = PATH_DEVICE.exec(e)
    if (m !== null) pathHeads.push(`nvme${m[1]}n${m[3]}`)
  }
  return {
    name,
    state: parseState(state),
    subsysnqn,
    transport,
    traddr: traddrOf(fields),
    trsvcid: fields.get("trsvcid"),
    ctrlLossTmo: tmo === Gone ? undefined : parseCtrlLossTmo(tmo),
    namespaces,
    pathHeads
  }
}

const readNamespace = (
  dir: string,
  name: string,
  subsysnqn: string,
  controllers: ReadonlyArray<string>,
  fixed: FixedAttributes | undefined
): NamespaceDevice | undefined => {
  // An identity attribute is absent when the namespace has none (the kernel hides it), or when
  // the whole directory just vanished: tell the two apart by the dev attribute.
  const whole = (v: ReadonlyArray<string | Gone>) => v[0] !== Gone && v[1] !== Gone && (!v.includes(Gone) || fs.existsSync(`${dir}/dev`))
  const got = fixed === undefined ? readAll(dir, NAMESPACE_FIXED) : fixed.read(dir, NAMESPACE_FIXED, whole)
  if (got === Gone) return undefined
  const [devT, nsid, nguid, uuid, wwid] = got as [string | Gone, string | Gone, string | Gone, string | Gone, string | Gone]
  const size = readAttr(`${dir}/size`)
  if (devT === Gone || nsid === Gone || size === Gone) return undefined
  if ((nguid === Gone || uuid === Gone || wwid === Gone) && !fs.existsSync(`${dir}/dev`)) return undefined
  const nsidNum = Number(nsid)
  const sectors = Number(size)
  if (!Number.isInteger(nsidNum) || !Number.isFinite(sectors)) fail(dir, `unexpected nsid '${nsid}' or size '${size}'`)
  return {
    name,
    devT,
    subsysnqn,
    nsid: nsidNum,
    nguid: nguid === Gone ? undefined : normaliseNguid(nguid),
    uuid: uuid === Gone ? undefined : uuid.toLowerCase(),
    wwid: wwid === Gone ? undefined : wwid,
    sizeBytes: sectors * 512,
    controllers
  }
}

/**
 * One consistent-enough view of every NVMe controller and user-visible namespace device; with
 * `only`, of those of subsystem `only` (every other one read as far as its subsysnqn).
 */
export const readSnapshot = (root: string, only?: string, fixed?: FixedAttributes): NvmeSnapshot => {
  const ctrlRoot = `${root}/class/nvme`
  const subRoot = `${root}/class/nvme-subsystem`

  const raw: Array<Omit<RawController, "subsystem">> = []
  const ctrlNames = list(ctrlRoot)
  for (const name of ctrlNames === Gone ? [] : ctrlNames) {
    if (!CONTROLLER.test(name)) continue
    const c = readController(`${ctrlRoot}/${name}`, name, only, fixed)
    if (c !== undefined) raw.push(c)
  }

  const subsystemOf = new Map<string, string>()
  const namespaces: Array<NamespaceDevice> = []
  const heads: Array<{ dir: string; name: string; subsystem: string; subsysnqn: string; members: ReadonlyArray<string> }> = []
  const subNames = list(subRoot)
  for (const sub of subNames === Gone ? [] : subNames) {
    const dir = `${subRoot}/${sub}`
    // A subsystem's NQN is set before the kernel adds its directory: kept from the first reading.
    const got = fixed === undefined ? readAll(dir, SUBSYSTEM_FIXED) : fixed.read(dir, SUBSYSTEM_FIXED, (v) => v[0] !== Gone)
    const nqn = got === Gone ? Gone : got[0]!
    if (nqn === Gone || (only !== undefined && nqn !== only)) continue
    const entries = list(dir)
    if (entries === Gone) continue
    const members = entries.filter((e) => CONTROLLER.test(e))
    for (const m of members) subsystemOf.set(m, sub)
    for (const e of entries) if (NAMESPACE.test(e)) heads.push({ dir: `${dir}/${e}`, name: e, subsystem: sub, subsysnqn: nqn, members })
  }

  const controllers: Array<Controller> = raw.map(({ namespaces: _n, pathHeads: _p, ...c }) => ({ ...c, subsystem: subsystemOf.get(c.name) }))
  const live = new Set(raw.map((c) => c.name))

  for (const h of heads) {
    const paths = raw.filter((c) => c.pathHeads.includes(h.name)).map((c) => c.name)
    const serving = paths.length > 0 ? paths : h.members.filter((m) => live.has(m))
    const ns = readNamespace(h.dir, h.name, h.subsysnqn, serving, fixed)
    if (ns !== undefined) namespaces.push(ns)
  }
  const seen = new Set(namespaces.map((n) => n.name))
  for (const c of raw) {
    for (const n of c.namespaces) {
      if (seen.has(n)) continue
      const ns = readNamespace(`${ctrlRoot}/${c.name}/${n}`, n, c.subsysnqn, [c.name], fixed)
      if (ns !== undefined) {
        namespaces.push(ns)
        seen.add(n)
      }
    }
  }
  namespaces.sort((a, b) => byDeviceName(a.name, b.name))
  controllers.sort((a, b) => byDeviceName(a.name, b.name))
  if (only === undefined) fixed?.prune()
  return { controllers, namespaces }
}

/** `major:minor` from `/sys/block/<name>/dev`, undefined when there is no such block device. */
export const readBlockDevT = (root: string, name: string): string | undefined => {
  if (!/^[A-Za-z0-9._:-]+$/.test(name) || name === "." || name === "..") return undefined
  const v = readAttr(`${root}/block/${name}/dev`)
  return v === Gone ? undefined : v
}

const attempt = <A>(path: string, f: () => A): Effect.Effect<A, SysfsError> =>
  Effect.try({ try: f, catch: (e) => e instanceof SysfsError ? e : new SysfsError({ path, detail: String(e) }) })

export const SysfsLive: Layer.Layer<Sysfs, never, Settings> = Layer.effect(
  Sysfs,
  Effect.gen(function*() {
    const settings = yield* Settings
    const root = settings.sysfsRoot.replace(/\/+$/, "")
    // Device nodes: the kernel (devtmpfs) creates /dev/nvmeXnY as the namespace appears; the DaemonSet mounts the host's /dev.
    const devRoot = "/dev"
    const bootIdPath = `${settings.procRoot.replace(/\/+$/, "")}/sys/kernel/random/boot_id`
    // Constant for the life of the process: read once, on first use.
    const bootId = yield* Effect.cached(attempt(bootIdPath, () => {
      const id = fs.readFileSync(bootIdPath, "utf8").trim()
      if (id === "") throw new SysfsError({ path: bootIdPath, detail: "empty" })
      return id
    }))
    const fixed = new FixedAttributes()
    return Sysfs.of({
      bootId,
      snapshot: attempt(root, () => readSnapshot(root, undefined, fixed)).pipe(Effect.withSpan("Sysfs.snapshot")),
      deviceChange: (within: Duration.Duration) => deviceChange(devRoot, within),
      deviceWatch: watchDevices(devRoot),
      snapshotOf: (nqn: string) => attempt(root, () => readSnapshot(root, nqn, fixed)).pipe(Effect.withSpan("Sysfs.snapshotOf")),
      blockDevT: Effect.fn("Sysfs.blockDevT")(function*(name: string) {
        return yield* attempt(`${root}/block/${name}`, () => readBlockDevT(root, name))
      }),
      fabricsAvailable: Effect.sync(() => fs.existsSync(`${root}/class/nvme-fabrics`)),
      stateReader: Effect.map(
        Effect.acquireRelease(Effect.sync(() => openStateFiles(root)), (files) => Effect.sync(files.closeAll)),
        // No span per read: it runs every --state-watch-interval (100 ms), a span each would cost more than the read.
        (files): StateReader => ({ read: (names) => Effect.sync(() => files.read(names)) })
      )
    })
  })
)

export const layer = SysfsLive
