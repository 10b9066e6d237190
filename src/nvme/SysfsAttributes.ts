/**
 * Reading kernel attribute files under sysfs, and what never changes in them: an attribute's
 * trimmed text or Gone (the kernel deleting the device mid-read is not an error; an unreadable
 * file that exists is a SysfsError), the parsers of the attributes' formats, and FixedAttributes,
 * the per-directory memory of a health pass (SysfsLive.ts builds the snapshots from these).
 *
 * May import: node:fs, domain, nvme/Sysfs, nvme/SysfsWatch.
 */
import * as fs from "node:fs"
import { canonicalAddress } from "../domain/Target.ts"
import { SysfsError } from "./Sysfs.ts"
import { isVanished } from "./SysfsWatch.ts"

export const Gone: unique symbol = Symbol("Gone")
export type Gone = typeof Gone

export const fail = (path: string, e: unknown): never => {
  throw new SysfsError({ path, detail: (e as Error)?.message ?? String(e) })
}

/** Trimmed content of an attribute, or Gone when it (or its directory) does not exist. */
export const readAttr = (path: string): string | Gone => {
  try {
    return fs.readFileSync(path, "utf8").trim()
  } catch (e) {
    return isVanished(e) ? Gone : fail(path, e)
  }
}

export const list = (dir: string): ReadonlyArray<string> | Gone => {
  try {
    return fs.readdirSync(dir)
  } catch (e) {
    return isVanished(e) ? Gone : fail(dir, e)
  }
}

/** `traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1` → its fields. */
export const parseAddress = (address: string): ReadonlyMap<string, string> => {
  const out = new Map<string, string>()
  for (const part of address.split(",")) {
    const eq = part.indexOf("=")
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  return out
}

/**
 * The `traddr` field in canonical form: the kernel echoes the string nvme-cli gave it, and a
 * controller made by hand (or by an older plugin) may spell an IPv6 address differently.
 */
export const traddrOf = (fields: ReadonlyMap<string, string>): string | undefined => {
  const traddr = fields.get("traddr")
  return traddr === undefined ? undefined : canonicalAddress(traddr)
}

/** `ctrl_loss_tmo`: seconds, or `off` (never give up) = -1. */
export const parseCtrlLossTmo = (value: string): number | undefined => {
  if (value === "off") return -1
  const n = Number(value)
  return value !== "" && Number.isInteger(n) ? n : undefined
}

/** The kernel prints the NGUID as a UUID (8-4-4-4-12); volume contexts give 32 hex digits. */
export const normaliseNguid = (value: string): string => value.replaceAll("-", "").toLowerCase()

/**
 * What never changes for the life of one kernfs directory (a controller's subsysnqn, transport
 * and address; a namespace's dev, nsid and identity), kept by directory while its inode number
 * and ctime stay the same: kernfs never reuses an inode number (it carries a generation), and a
 * directory made again is a new one. A pass over a hundred volumes then stats each directory and
 * reads only what changes (state, size, the entries), not every attribute again.
 */
export class FixedAttributes {
  private readonly entries = new Map<string, { readonly key: string; readonly names: ReadonlyArray<string>; values: ReadonlyArray<string | Gone>; kept: boolean }>()
  private visited = new Set<string>()

  /** `names` in `dir`, from the last reading when the directory is the same one; Gone when it is not there. */
  read(dir: string, names: ReadonlyArray<string>, keep: (values: ReadonlyArray<string | Gone>) => boolean): ReadonlyArray<string | Gone> | Gone {
    let st: fs.BigIntStats | undefined
    try {
      st = fs.statSync(dir, { bigint: true, throwIfNoEntry: false })
    } catch (e) {
      return isVanished(e) ? Gone : fail(dir, e)
    }
    if (st === undefined) return Gone
    this.visited.add(dir)
    const key = `${st.ino}:${st.ctimeNs}`
    const known = this.entries.get(dir)
    if (known !== undefined && known.key === key && known.kept) return known.values
    const values = names.map((n) => readAttr(`${dir}/${n}`))
    // A directory caught vanishing mid-read, or not settled yet, is read again next time.
    this.entries.set(dir, { key, names, values, kept: keep(values) })
    return values
  }

  /**
   * Keeps the reading of `dir` from now on, its caller having seen the directory settle (a
   * controller gone live): read once more, and kept only if nothing changed since the first read.
   */
  keep(dir: string): void {
    const known = this.entries.get(dir)
    if (known === undefined || known.kept) return
    const again = known.names.map((n) => readAttr(`${dir}/${n}`))
    if (again.every((v, i) => v === known.values[i])) known.kept = true
    else known.values = again
  }

  /** After a full snapshot: forget the directories it did not see (their devices are gone). */
  prune(): void {
    for (const dir of this.entries.keys()) if (!this.visited.has(dir)) this.entries.delete(dir)
    this.visited = new Set()
  }
}

/** Without a FixedAttributes: every attribute read each time (the pure readSnapshot). */
export const readAll = (dir: string, names: ReadonlyArray<string>): ReadonlyArray<string | Gone> => names.map((n) => readAttr(`${dir}/${n}`))
