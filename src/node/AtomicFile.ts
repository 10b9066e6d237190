/**
 * Files written so that a crash or power loss leaves the old content or the new, never half of
 * either (the stage records, StageStoreLive.ts): write a temp file in the same directory, fsync
 * it, rename it over the old one, and fsync the directory when the name is new. The local calls
 * (open, write, rename) are synchronous; each fsync waits in libuv's pool, off the event loop
 * (one round trip through the pool per call cost ~1–3 ms under the VM's emulation).
 *
 * May import: node:fs, node:path.
 */
import * as fs from "node:fs"
import * as path from "node:path"

const fsyncFd = (fd: number): Promise<void> =>
  new Promise((resolve, reject) => fs.fsync(fd, (e) => (e === null ? resolve() : reject(e))))

const flushDirectory = async (dir: string, flush: Flush): Promise<void> => {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  try {
    await flush(fd, "directory")
  } finally {
    fs.closeSync(fd)
  }
}

/** Flushes `dir` itself: a rename or unlink in it survives a power loss once this returns. */
export const fsyncDir = (dir: string): Promise<void> => flushDirectory(dir, fsyncFd)

/** What writeAtomically flushes: the new file's content, and the directory when the name is new. */
export type Flush = (fd: number, what: "file" | "directory") => Promise<void>

/**
 * Write-temp, fsync, rename, and fsync the directory when the file is new; the written file's
 * stat (its inode, size and mtime stay through the rename). The temp file (a dot-file ending in
 * `.tmp`, never taken for a record) is removed if anything fails.
 *
 * A record that replaces one (the stage finished, a target published, an unstage begun) leaves
 * the directory to the file system's own flush: after a crash the name holds either version,
 * whole (the content was flushed before the rename), and a crash that loses the newer one is a
 * reboot, after which the record describes an earlier boot whatever it says. A new record's name
 * is flushed before the stage goes on.
 */
export const writeAtomically = async (dir: string, name: string, content: string, flush: Flush = fsyncFd): Promise<fs.BigIntStats> => {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  // Unique enough with the PID ("wx" refuses a clash rather than share a file).
  const tmp = path.join(dir, `.${name}.${process.pid}-${Math.random().toString(16).slice(2, 10)}.tmp`)
  const target = path.join(dir, name)
  let replaces: boolean
  let written: fs.BigIntStats
  try {
    const fd = fs.openSync(tmp, "wx", 0o600)
    try {
      fs.writeFileSync(fd, content, "utf8")
      await flush(fd, "file")
      written = fs.fstatSync(fd, { bigint: true })
    } finally {
      fs.closeSync(fd)
    }
    replaces = fs.existsSync(target)
    fs.renameSync(tmp, target)
  } catch (e) {
    fs.rmSync(tmp, { force: true })
    throw e
  }
  if (!replaces) await flushDirectory(dir, flush)
  return written
}
