// Captures the NVMe-relevant part of a real /sys as a JSON fixture that tests materialise
// into a temp dir (test/nvme/sysfsFixture.ts): directories, symlinks (kept as links, with
// their relative targets) and the small attribute files SysfsLive and the e2e tests read.
//
//   node sysfs-snapshot.mjs [SYSFS_ROOT] > tree.json
//
// Runs inside the VM. Walks /sys/class/{nvme,nvme-subsystem,nvme-fabrics}, /sys/block/nvme*
// and the device directories they point to; skips the rest of /sys (power/, queue/, ...).
import * as fs from "node:fs"
import * as path from "node:path"

const root = process.argv[2] ?? "/sys"
const ATTRS = new Set([
  "state", "subsysnqn", "transport", "address", "ctrl_loss_tmo", "reconnect_delay", "fast_io_fail_tmo",
  "kato", "cntlid", "hostnqn", "hostid", "model", "serial", "firmware_rev", "queue_count", "numa_node",
  "iopolicy", "subsystype", "dev", "size", "nsid", "nguid", "uuid", "wwid", "eui", "ro", "hidden",
  "ana_state", "ana_grpid", "removable", "uevent", "cntrltype", "dctype"
])
const NS_DIR = /^nvme\d+(c\d+)?n\d+$/
const entries = {}
const rel = (p) => path.relative(root, p)
const seen = new Set()

const record = (p, value) => { entries[rel(p)] = value }

const walkDevice = (dir) => {
  if (seen.has(dir)) return
  seen.add(dir)
  record(dir, { dir: true })
  let names
  try { names = fs.readdirSync(dir) } catch (e) { record(dir, { dir: true, error: e.code }); return }
  for (const name of names) {
    const p = path.join(dir, name)
    let st
    try { st = fs.lstatSync(p) } catch { continue }
    if (st.isSymbolicLink()) {
      // controller links inside a subsystem dir (nvme0 -> ../../.../nvme0), multipath/ members
      if (/^nvme\d+$/.test(name) || /^nvme\d+c\d+n\d+$/.test(name)) {
        record(p, { link: fs.readlinkSync(p) })
        const target = fs.realpathSync(p)
        if (target.startsWith(root + "/")) walkDevice(target)
      }
    } else if (st.isDirectory()) {
      if (NS_DIR.test(name)) walkDevice(p)
      else if (name === "multipath") {
        record(p, { dir: true })
        for (const m of fs.readdirSync(p)) record(path.join(p, m), { link: fs.readlinkSync(path.join(p, m)) })
      }
    } else if (ATTRS.has(name)) {
      try { record(p, { text: fs.readFileSync(p, "utf8") }) } catch (e) { record(p, { error: e.code }) }
    }
  }
}

const walkClass = (dir, filter) => {
  let names
  try { names = fs.readdirSync(dir) } catch { return }
  record(dir, { dir: true })
  for (const name of names) {
    if (!filter(name)) continue
    const p = path.join(dir, name)
    let st
    try { st = fs.lstatSync(p) } catch { continue }
    if (st.isSymbolicLink()) {
      record(p, { link: fs.readlinkSync(p) })
      try { walkDevice(fs.realpathSync(p)) } catch { /* vanished */ }
    } else if (st.isDirectory()) walkDevice(p)
  }
}

walkClass(path.join(root, "class/nvme"), () => true)
walkClass(path.join(root, "class/nvme-subsystem"), () => true)
walkClass(path.join(root, "block"), (n) => n.startsWith("nvme"))
if (fs.existsSync(path.join(root, "class/nvme-fabrics"))) {
  record(path.join(root, "class/nvme-fabrics"), { dir: true })
  for (const n of fs.readdirSync(path.join(root, "class/nvme-fabrics"))) {
    record(path.join(root, "class/nvme-fabrics", n), { link: fs.readlinkSync(path.join(root, "class/nvme-fabrics", n)) })
  }
}
const sorted = Object.fromEntries(Object.keys(entries).sort().map((k) => [k, entries[k]]))
process.stdout.write(JSON.stringify({ capturedFrom: root, kernel: fs.readFileSync("/proc/sys/kernel/osrelease", "utf8").trim(), entries: sorted }, null, 1) + "\n")
