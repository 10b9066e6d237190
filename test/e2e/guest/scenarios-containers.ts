/**
 * What a pod sees after a recovery, on the real kernel (INSIDE the VM; issue 10.3). Two
 * "containers" hold the published volume the way a runtime does: one in a mount namespace with
 * PRIVATE propagation (CRI's default, `mountPropagation: None`), one with SLAVE propagation
 * (`HostToContainer`). Fault C then makes the kernel delete the controller; the plugin recovers
 * the volume onto a new device and re-binds the host's target. Proven here: what each container
 * reads, and that the plugin says so honestly — VolumeCondition abnormal with "restart the pod"
 * while the private one holds the old mount, normal again once it has exited.
 *
 * May import: node built-ins, ./harness.ts, ./hostLink.ts, ./resilience-common.ts, ./scenarios-outage.ts.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { attachedOf, mountsAt, type Recorder, run, since, targetPath, waitFor } from "./harness.ts"
import { expectOnHost } from "./hostLink.ts"
import { type Env, gone, nvmet, stageAndPublish, tearDown, type Vol, volume, waitCtrl, writeThrough, type Written } from "./resilience-common.ts"
import { conditionOf } from "./scenarios-outage.ts"

/** The pod segment of the target path: kubelet puts the pod's UID there. */
export const CONTAINER_POD_UID = "7d1c1e2a-0b5f-4c3e-9a8d-6f2b1c0e9a71"

interface Container {
  readonly name: string
  readonly child: ChildProcess
  readonly pid: number
}

/** A process in a new mount namespace whose mounts are copies of the host's with `propagation`. */
const startContainer = async (name: string, propagation: "private" | "slave"): Promise<Container> => {
  const child = spawn("unshare", ["--mount", `--propagation=${propagation}`, "--", "sleep", "600"], { stdio: "ignore" })
  const pid = child.pid
  if (pid === undefined) throw new Error(`unshare for ${name} did not start`)
  // unshare(2) then exec: the same pid, in its own namespace once /proc says so.
  const ready = await waitFor(async () => {
    const own = await run("readlink", [`/proc/${pid}/ns/mnt`])
    const host = await run("readlink", ["/proc/1/ns/mnt"])
    return own.code === 0 && own.stdout.trim() !== host.stdout.trim() ? true : undefined
  }, 10_000, 50)
  if (ready === undefined) throw new Error(`${name}: pid ${pid} never got its own mount namespace`)
  return { name, child, pid }
}

/**
 * Reads `file` in the container with O_DIRECT (the page cache would still serve what was
 * written before the outage: an application's next uncached read or its next fsync is what
 * fails), then its sha256 (16 hex); or the error it gets.
 */
const readIn = async (c: Container, file: string): Promise<{ readonly ok: boolean; readonly text: string }> => {
  const direct = await run("nsenter", ["-t", String(c.pid), "-m", "--", "dd", `if=${file}`, "of=/dev/null", "iflag=direct", "bs=64k"], 20_000)
  if (direct.code !== 0) return { ok: false, text: `O_DIRECT read: ${(direct.stderr.trim() || `exit ${direct.code}`).split("\n")[0]}` }
  // No pipe: its exit status would be the last command's, not the read's.
  const r = await run("nsenter", ["-t", String(c.pid), "-m", "--", "sha256sum", file], 20_000)
  return r.code === 0 ? { ok: true, text: r.stdout.slice(0, 16) } : { ok: false, text: (r.stderr.trim() || `exit ${r.code}`).split("\n").pop()! }
}

const stop = async (c: Container): Promise<void> => {
  c.child.kill("SIGKILL")
  await waitFor(() => (c.child.exitCode !== null || c.child.signalCode !== null ? true : undefined), 5000, 20)
}

export const containerView = async (env: Env, r: Recorder): Promise<void> => {
  const base = volume(env, "res-p")
  const v: Vol = { ...base, target: targetPath(base.vol, CONTAINER_POD_UID) }
  // On a node, systemd makes / shared (kubelet's Bidirectional and HostToContainer rely on it).
  await run("mount", ["--make-rshared", "/"])
  const a = await stageAndPublish(env, r, v, { ctrlLossTmo: "5", reconnectDelay: "1" })
  const before: Written = writeThrough(v, "before")
  const priv = await startContainer("private (mountPropagation: None)", "private")
  const slave = await startContainer("rslave (mountPropagation: HostToContainer)", "slave")
  try {
    for (const c of [priv, slave]) {
      const seen = await readIn(c, before.file)
      r.check(seen.ok && seen.text === before.sha, `${c.name}: reads the volume before the outage`, seen.text)
    }
    const t0 = performance.now()
    await nvmet("unlink", v.nqn)
    const lost = await waitCtrl(v.nqn, gone, 30_000)
    r.check(lost !== undefined, `sysfs: the kernel deleted ${a.ctrl.name} (ctrl_loss_tmo 5 s)`, `${since(t0)} ms after the unlink`)
    await nvmet("link", v.nqn)
    const recovered = await waitFor(() => {
      const now = attachedOf(v.nqn)
      const t = mountsAt(v.target)[0]
      return now !== undefined && t !== undefined && t.devT === now.ns.devT && now.ns.devT !== a.ns.devT ? now : undefined
    }, 60_000, 20)
    r.check(recovered !== undefined, "the plugin recovered the volume onto a new device and re-bound the host's target",
      `${a.ns.name} (${a.ns.devT}) → ${recovered?.ns.name} (${recovered?.ns.devT})`)
    r.device("old device", `/dev/${a.ns.name} (${a.ns.devT})`)
    r.device("new device", `/dev/${recovered?.ns.name} (${recovered?.ns.devT})`)

    const p = await readIn(priv, before.file)
    r.check(!p.ok, `${priv.name}: still holds the old mount — reading fails after the recovery (what the app sees until the pod restarts)`, p.text)
    const s = await readIn(slave, before.file)
    r.check(s.ok && s.text === before.sha, `${slave.name}: sees the recovered volume (the host's unmount and re-bind propagate)`, s.text)

    const held = await waitFor(async () => {
      const c = await conditionOf(env, v)
      return c.abnormal === true && c.message.includes("restart the pod") ? c : undefined
    }, 15_000, 250)
    r.check(held !== undefined && held.message.includes(CONTAINER_POD_UID),
      "VolumeCondition abnormal while a container holds the old mount, naming the pod and 'restart the pod'", held?.message ?? "not abnormal")

    await expectOnHost(r, {
      what: "fault C seen on the PVC: StaleMountDetected",
      target: v.pvc,
      expect: [{ type: "Normal", reason: "StaleMountDetected" }],
      timeoutMs: 20_000
    })

    // The pod restarts (its container exits): nobody holds the old device any more.
    await stop(priv)
    const clear = await waitFor(async () => {
      const c = await conditionOf(env, v)
      return c.abnormal === false ? c : undefined
    }, 15_000, 250)
    r.check(clear !== undefined, "after the private container exits: VolumeCondition normal again", clear?.message ?? "still abnormal")
  } finally {
    await stop(priv)
    await stop(slave)
  }
  await tearDown(env, r, v)
}
