/**
 * The few file operations the nvmet backend does on configfs, behind one interface so the
 * backend's logic runs against a plain directory in unit tests.
 *
 * `live` is node:fs on the real /sys/kernel/config/nvmet. `plainDir` stands in for it on any
 * file system, copying the configfs rules the backend depends on: a `mkdir` does not make the
 * attribute files (writing one creates it), a symlink's parent (a configfs default group such
 * as `allowed_hosts/` or `subsystems/`) exists implicitly, and `rmdir` of an item removes its
 * attribute files and its *empty* default groups but fails (ENOTEMPTY) while a child item or a
 * link is left inside — as configfs refuses to remove a subsystem that still has a namespace —
 * and nvmet's allowed-hosts rules hold (EINVAL): no host linked while attr_allow_any_host is 1,
 * no attr_allow_any_host=1 while hosts are linked.
 *
 * All operations are idempotent where the backend needs it: mkdir is `mkdir -p`, unlink/rmdir
 * of something absent and symlink onto an existing link succeed.
 *
 * May import: node.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"

export interface ConfigfsOps {
  readonly mkdir: (dir: string) => Promise<void>
  readonly rmdir: (dir: string) => Promise<void>
  readonly write: (file: string, value: string) => Promise<void>
  /** The attribute's content without the trailing newline; `undefined` when it does not exist. */
  readonly read: (file: string) => Promise<string | undefined>
  readonly exists: (p: string) => Promise<boolean>
  readonly symlink: (target: string, link: string) => Promise<void>
  readonly unlink: (link: string) => Promise<void>
  /** Entry names; `[]` when the directory does not exist. */
  readonly readdir: (dir: string) => Promise<ReadonlyArray<string>>
}

const code = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined

const ignore = (codes: ReadonlyArray<string>) => (e: unknown): void => {
  if (!codes.includes(code(e) ?? "")) throw e
}

const common = {
  mkdir: async (dir: string) => {
    await fs.mkdir(dir, { recursive: true })
  },
  write: (file: string, value: string) => fs.writeFile(file, value),
  read: (file: string) => fs.readFile(file, "utf8").then((s) => s.replace(/\n$/, ""), (e: unknown) => {
    ignore(["ENOENT"])(e)
    return undefined
  }),
  exists: (p: string) => fs.lstat(p).then(() => true, () => false),
  unlink: (link: string) => fs.unlink(link).catch(ignore(["ENOENT"])),
  readdir: (dir: string) => fs.readdir(dir).catch((e: unknown): ReadonlyArray<string> => {
    ignore(["ENOENT"])(e)
    return []
  })
}

/** The real configfs. */
export const live: ConfigfsOps = {
  ...common,
  rmdir: (dir) => fs.rmdir(dir).catch(ignore(["ENOENT"])),
  symlink: (target, link) => fs.symlink(target, link).catch(ignore(["EEXIST"]))
}

const invalid = (what: string) => Object.assign(new Error(`EINVAL: invalid argument, ${what}`), { code: "EINVAL" })

const notEmpty = (dir: string) => Object.assign(new Error(`ENOTEMPTY: directory not empty, rmdir '${dir}'`), { code: "ENOTEMPTY" })

/** A plain directory behaving like configfs for the backend (see the header). */
export const plainDir: ConfigfsOps = {
  ...common,
  rmdir: async (dir) => {
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch((e: unknown) => {
      ignore(["ENOENT"])(e)
      return undefined
    })
    if (entries === undefined) return
    for (const e of entries) {
      const p = path.join(dir, e.name)
      if (e.isSymbolicLink()) throw notEmpty(dir)
      if (e.isDirectory()) {
        if ((await fs.readdir(p)).length > 0) throw notEmpty(dir)
      }
    }
    for (const e of entries) {
      const p = path.join(dir, e.name)
      if (e.isDirectory()) await fs.rmdir(p)
      else await fs.unlink(p)
    }
    await fs.rmdir(dir)
  },
  symlink: async (target, link) => {
    // nvmet: "can't add hosts when allow_any_host is set" (EINVAL)
    if (path.basename(path.dirname(link)) === "allowed_hosts") {
      const any = await common.read(path.join(path.dirname(path.dirname(link)), "attr_allow_any_host"))
      if (any === "1") throw invalid(`symlink '${link}': attr_allow_any_host is 1`)
    }
    await fs.mkdir(path.dirname(link), { recursive: true })
    await fs.symlink(target, link).catch(ignore(["EEXIST"]))
  },
  write: async (file, value) => {
    // nvmet: "can't set allow_any_host when explicit hosts are set" (EINVAL)
    if (path.basename(file) === "attr_allow_any_host" && value.trim() === "1" && (await common.readdir(path.join(path.dirname(file), "allowed_hosts"))).length > 0) {
      throw invalid(`write '${file}': hosts are linked in allowed_hosts`)
    }
    await fs.writeFile(file, value)
  }
}
