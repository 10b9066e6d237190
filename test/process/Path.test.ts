/**
 * onPath: the one PATH lookup (Probe's nvme, the mount tools, the spawn helper's perl, doctor).
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { onPath } from "../../src/process/Path.ts"

describe("onPath", () => {
  it("finds the first executable file, as execvp would: past directories, non-executables and empty entries", () => {
    const root = fs.mkdtempSync("/tmp/rds-csi-path-")
    try {
      const [a, b, c, d] = ["a", "b", "c", "d"].map((n) => path.join(root, n))
      for (const dir of [a, b, c, d]) fs.mkdirSync(dir!)
      fs.mkdirSync(path.join(a!, "tool")) // a directory of that name: searchable, not runnable
      fs.writeFileSync(path.join(b!, "tool"), "#!/bin/sh\n", { mode: 0o644 }) // not executable
      fs.writeFileSync(path.join(c!, "tool"), "#!/bin/sh\n", { mode: 0o755 })
      fs.writeFileSync(path.join(d!, "tool"), "#!/bin/sh\n", { mode: 0o755 })
      const env = `:${a}:${b}::${c}:${d}`
      // root passes access(X_OK) on any file with an x bit; the 0644 one has none.
      assert.strictEqual(onPath("tool", env), path.join(c!, "tool"))
      assert.isUndefined(onPath("other", env))
      assert.isUndefined(onPath("tool", ""))
      assert.isDefined(onPath("sh"), "the process's own PATH by default")
    } finally {
      fs.rmSync(root, { recursive: true, force: true })
    }
  })
})
