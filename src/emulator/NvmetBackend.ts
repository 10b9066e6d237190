/**
 * The emulator's nvmet backend: disks become sparse files under `storageRoot`
 * (`/storage-pool/k8s/a.img` → `<storageRoot>/storage-pool/k8s/a.img`) exported over NVMe/TCP
 * by the Linux kernel target (configfs, root only):
 *
 *   subsystems/<nqn>/                      attr_allow_any_host: 1 when allow-host-name is "", else 0
 *   subsystems/<nqn>/allowed_hosts/<host>  → hosts/<host>
 *   subsystems/<nqn>/namespaces/1/         device_path = the file (nvmet's file backend),
 *                                          buffered_io = 1 (works on any file system), enable = 1
 *   ports/<tcp port>/                      addr_trtype=tcp addr_adrfam=ipv4|ipv6
 *                                          addr_traddr=<nvmeAddress> addr_trsvcid=<tcp port>
 *   ports/<tcp port>/subsystems/<nqn>      → subsystems/<nqn>
 *
 * Growing truncates the file larger and writes 1 to namespaces/1/revalidate_size where the
 * kernel has it, so initiators see the new size. Unexport unlinks the ports, disables and
 * removes the namespace, the host links, the subsystem and host entries no subsystem uses.
 * Ports stay (another subsystem may use them; an idle port costs nothing).
 *
 * The configfs root and operations are options: unit tests run this against a plain directory
 * (Configfs.plainDir). `layer` loads nvmet and nvmet-tcp with modprobe first.
 *
 * May import: effect, process/Command, ./Backend, ./Configfs, ./Model.
 */
import { Duration, Effect, Layer } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { runCommand } from "../process/Command.ts"
import { type Action, Backend, BackendError } from "./Backend.ts"
import { type ConfigfsOps, live } from "./Configfs.ts"
import type { DiskEntry, EmulatorState } from "./Model.ts"

export const DEFAULT_CONFIGFS_ROOT = "/sys/kernel/config/nvmet"

export interface NvmetOptions {
  /** Where `/storage-pool/...` lives on this host. */
  readonly storageRoot: string
  /** The address the NVMe/TCP port listens on (what nodes connect to). */
  readonly nvmeAddress: string
  /** Default /sys/kernel/config/nvmet. */
  readonly configfsRoot?: string
  /** Default Configfs.live. */
  readonly configfs?: ConfigfsOps
  /** Ask nvmet for buffered I/O on the file (default true: O_DIRECT fails on some file systems). */
  readonly bufferedIo?: boolean
}

const absentOk = (e: unknown): void => {
  if (!(typeof e === "object" && e !== null && "code" in e && e.code === "ENOENT")) throw e
}

const io = <A>(what: string, p: string, f: () => Promise<A>, reason: "Io" | "Configfs" = "Configfs") =>
  Effect.tryPromise({ try: f, catch: (e) => new BackendError({ reason, path: p, detail: `${what}: ${e instanceof Error ? e.message : String(e)}` }) })

/** The backend over an existing configfs tree (no module loading, no root check). */
export const make = (options: NvmetOptions): Backend["Service"] => {
  const root = options.configfsRoot ?? DEFAULT_CONFIGFS_ROOT
  const cfs = options.configfs ?? live
  const sub = (nqn: string) => path.join(root, "subsystems", nqn)
  const hostDir = (host: string) => path.join(root, "hosts", host)
  const portDir = (port: number) => path.join(root, "ports", String(port))
  const file = (p: string) => path.join(options.storageRoot, path.posix.normalize(`/${p}`))

  const cleanupHost = (host: string) =>
    io("remove host", hostDir(host), async () => {
      for (const s of await cfs.readdir(path.join(root, "subsystems"))) {
        if ((await cfs.readdir(path.join(sub(s), "allowed_hosts"))).includes(host)) return
      }
      await cfs.rmdir(hostDir(host))
    })

  // The kernel's rules (drivers/nvme/target/configfs.c): no host may be linked while
  // attr_allow_any_host is 1 (EINVAL), and attr_allow_any_host cannot become 1 while hosts are
  // linked. So: closing = allow_any_host 0 first, then link; opening = unlink first, then 1.
  const setAllowedHosts = (disk: DiskEntry) =>
    Effect.gen(function*() {
      const s = sub(disk.nvmeTcpServerNqn)
      const want = disk.allowHostName
      if (want !== "") {
        yield* io("set attr_allow_any_host", s, () => cfs.write(path.join(s, "attr_allow_any_host"), "0"))
        yield* io("create host", hostDir(want), () => cfs.mkdir(hostDir(want)))
        const linked = yield* io("list allowed hosts", s, () => cfs.readdir(path.join(s, "allowed_hosts")))
        if (!linked.includes(want)) yield* io("allow host", s, () => cfs.symlink(hostDir(want), path.join(s, "allowed_hosts", want)))
      }
      const links = yield* io("list allowed hosts", s, () => cfs.readdir(path.join(s, "allowed_hosts")))
      for (const h of links.filter((h) => h !== want)) {
        yield* io("disallow host", s, () => cfs.unlink(path.join(s, "allowed_hosts", h)))
        yield* cleanupHost(h)
      }
      if (want === "") yield* io("set attr_allow_any_host", s, () => cfs.write(path.join(s, "attr_allow_any_host"), "1"))
    })

  const ensureNamespace = (disk: DiskEntry) =>
    Effect.gen(function*() {
      const ns = path.join(sub(disk.nvmeTcpServerNqn), "namespaces", "1")
      const device = file(disk.filePath)
      yield* io("create namespace", ns, () => cfs.mkdir(ns))
      const current = yield* io("read namespace", ns, () => cfs.read(path.join(ns, "device_path")))
      let enabled = (yield* io("read namespace", ns, () => cfs.read(path.join(ns, "enable")))) === "1"
      if (current !== device) {
        if (enabled) yield* io("disable namespace", ns, () => cfs.write(path.join(ns, "enable"), "0"))
        enabled = false
        yield* io("set device_path", ns, () => cfs.write(path.join(ns, "device_path"), device))
      }
      if (!enabled) {
        if (options.bufferedIo !== false && (yield* io("read namespace", ns, () => cfs.exists(path.join(ns, "buffered_io"))))) {
          yield* io("set buffered_io", ns, () => cfs.write(path.join(ns, "buffered_io"), "1"))
        }
        yield* io("enable namespace", ns, () => cfs.write(path.join(ns, "enable"), "1"))
      }
    })

  const ensurePort = (port: number) =>
    Effect.gen(function*() {
      const dir = portDir(port)
      const want: ReadonlyArray<readonly [string, string]> = [
        ["addr_trtype", "tcp"],
        ["addr_adrfam", options.nvmeAddress.includes(":") ? "ipv6" : "ipv4"],
        ["addr_traddr", options.nvmeAddress],
        ["addr_trsvcid", String(port)]
      ]
      yield* io("create port", dir, () => cfs.mkdir(dir))
      const have = yield* io("read port", dir, () => Promise.all(want.map(([k]) => cfs.read(path.join(dir, k)))))
      if (want.every(([, v], i) => have[i] === v)) return
      const linked = yield* io("read port", dir, () => cfs.readdir(path.join(dir, "subsystems")))
      if (linked.length > 0) {
        return yield* new BackendError({
          reason: "Configfs",
          path: dir,
          detail: `nvmet port ${port} is in use with another address (${have.join(" ")}); the emulator needs ${options.nvmeAddress}:${port}`
        })
      }
      for (const [k, v] of want) yield* io(`set ${k}`, dir, () => cfs.write(path.join(dir, k), v))
    })

  const unlinkPorts = (nqn: string, keep: number | undefined) =>
    Effect.gen(function*() {
      const ports = yield* io("list ports", root, () => cfs.readdir(path.join(root, "ports")))
      for (const p of ports.filter((p) => p !== String(keep))) {
        yield* io("unlink port", portDir(Number(p)), () => cfs.unlink(path.join(root, "ports", p, "subsystems", nqn)))
      }
    })

  const exportDisk = (disk: DiskEntry) =>
    Effect.gen(function*() {
      const s = sub(disk.nvmeTcpServerNqn)
      yield* io("create subsystem", s, () => cfs.mkdir(s))
      yield* setAllowedHosts(disk)
      yield* ensureNamespace(disk)
      yield* ensurePort(disk.nvmeTcpServerPort)
      yield* unlinkPorts(disk.nvmeTcpServerNqn, disk.nvmeTcpServerPort)
      const link = path.join(portDir(disk.nvmeTcpServerPort), "subsystems", disk.nvmeTcpServerNqn)
      yield* io("link port", link, () => cfs.symlink(s, link))
    })

  const unexportDisk = (disk: DiskEntry) =>
    Effect.gen(function*() {
      const s = sub(disk.nvmeTcpServerNqn)
      yield* unlinkPorts(disk.nvmeTcpServerNqn, undefined)
      const ns = path.join(s, "namespaces", "1")
      if (yield* io("read namespace", ns, () => cfs.exists(path.join(ns, "enable")))) {
        yield* io("disable namespace", ns, () => cfs.write(path.join(ns, "enable"), "0"))
      }
      yield* io("remove namespace", ns, () => cfs.rmdir(ns))
      yield* setAllowedHosts({ ...disk, allowHostName: "" })
      yield* io("remove subsystem", s, () => cfs.rmdir(s))
    })

  const revalidate = (disk: DiskEntry) => {
    const attr = path.join(sub(disk.nvmeTcpServerNqn), "namespaces", "1", "revalidate_size")
    return io("revalidate size", attr, async () => {
      if (await cfs.exists(attr)) await cfs.write(attr, "1")
    })
  }

  const sizeFile = (p: string, size: number) =>
    io("create file", file(p), async () => {
      await fs.mkdir(path.dirname(file(p)), { recursive: true })
      const h = await fs.open(file(p), "a")
      try {
        if ((await h.stat()).size < size) await h.truncate(size)
      } finally {
        await h.close()
      }
    }, "Io")

  const apply = (action: Action): Effect.Effect<void, BackendError> => {
    switch (action._tag) {
      case "CreateDirectory":
        return io("create directory", file(action.path), () => fs.mkdir(file(action.path), { recursive: true }), "Io")
      case "RemoveDirectory":
        return io("remove directory", file(action.path), () => fs.rmdir(file(action.path)).catch(absentOk), "Io")
      case "CreateFile":
      case "ResizeFile":
        return sizeFile(action.path, action.size)
      case "RemoveFile":
        return io("remove file", file(action.path), () => fs.rm(file(action.path), { force: true }), "Io")
      case "Export":
        return exportDisk(action.disk)
      case "Revalidate":
        return revalidate(action.disk)
      case "Unexport":
        return unexportDisk(action.disk)
    }
  }

  const restore = (state: EmulatorState) =>
    Effect.gen(function*() {
      for (const f of state.files) {
        yield* f.type === "directory" ? apply({ _tag: "CreateDirectory", path: `/${f.name}` }) : sizeFile(`/${f.name}`, f.size)
      }
      for (const d of state.disks.filter((d) => d.nvmeTcpExport)) yield* exportDisk(d)
    })

  return Backend.of({ kind: "nvmet", apply: Effect.fn("NvmetBackend.apply")(apply), restore: Effect.fn("NvmetBackend.restore")(restore) })
}

const setup = (detail: string, p = "") => new BackendError({ reason: "Setup", path: p, detail })

/** Checks root, loads nvmet and nvmet-tcp, checks configfs; then `make`. */
/** statfs(2) f_type of overlayfs. */
const OVERLAYFS_MAGIC = 0x794c7630

export const layer = (options: NvmetOptions): Layer.Layer<Backend, BackendError> =>
  Layer.effect(
    Backend,
    Effect.gen(function*() {
      const root = options.configfsRoot ?? DEFAULT_CONFIGFS_ROOT
      if (process.getuid?.() !== 0) return yield* setup("the nvmet backend needs root (configfs and modprobe); use --backend memory otherwise")
      for (const module of ["nvmet", "nvmet-tcp"]) {
        const out = yield* runCommand("modprobe", [module], Duration.seconds(30)).pipe(
          Effect.mapError((f) => setup(`modprobe ${module}: ${f._tag === "Timeout" ? "timed out" : f.detail}`))
        )
        if (out.exitCode !== 0) {
          return yield* setup(`modprobe ${module} failed (exit ${out.exitCode}): ${(out.stderr || out.stdout).trim()}; ` +
            "the kernel needs CONFIG_NVME_TARGET and CONFIG_NVME_TARGET_TCP (Debian: linux-image with modules)")
        }
      }
      const found = yield* Effect.promise(() => fs.stat(root).then((s) => s.isDirectory(), () => false))
      if (!found) return yield* setup(`${root} does not exist: is configfs mounted? (mount -t configfs none /sys/kernel/config)`, root)
      yield* io("create storage root", options.storageRoot, () => fs.mkdir(path.join(options.storageRoot, "storage-pool"), { recursive: true }), "Io")
      // nvmet's file backend takes the block size from the file's inode, and an overlayfs inode
      // reports none: the namespace then has 1-byte blocks and the initiator sees a 0-byte disk
      // (seen in the e2e VM, whose /tmp is an overlay). Refuse instead of exporting empty disks.
      const fsType = yield* Effect.promise(() => fs.statfs(options.storageRoot).then((st) => st.type, () => undefined))
      if (fsType === OVERLAYFS_MAGIC) {
        return yield* setup(
          `--storage-root ${options.storageRoot} is on overlayfs, where nvmet's file backend exports 0-byte namespaces; put it on ext4, xfs or tmpfs (e.g. /var/lib/rds-emulator/storage on the host's disk, or /run/…)`,
          options.storageRoot
        )
      }
      return make(options)
    })
  )

export const NvmetBackend = { layer, make } as const
