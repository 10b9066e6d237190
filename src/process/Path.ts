/**
 * Where a command is on PATH, as execvp would find it: the first directory holding an
 * executable regular file of that name. One lookup for every part that asks (nvme-cli for Probe,
 * the mount tools for the node's own check, perl for the spawn helper and doctor).
 *
 * May import: node:fs, node:path.
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** The first executable regular file `name` in `pathEnv`'s directories (the process's PATH by default). */
export const onPath = (name: string, pathEnv: string | undefined = process.env["PATH"]): string | undefined => {
  for (const dir of (pathEnv ?? "").split(":")) {
    if (dir === "") continue
    const p = path.join(dir, name)
    try {
      fs.accessSync(p, fs.constants.X_OK)
      // A directory is "executable" too; execvp goes on past it.
      if (fs.statSync(p).isFile()) return p
    } catch {
      // not here: the next directory
    }
  }
  return undefined
}
