// qemu's per-connection program for `-f GUESTPORT:HOSTPORT` (run-in-vm.sh): qemu's user-mode
// network (slirp) runs one of these for every TCP connection the guest opens to
// 10.0.2.100:GUESTPORT, with that connection on fd 0/1; this copies bytes both ways between it
// and 127.0.0.1:HOSTPORT, half-closes each way as the other side does, and exits when both are
// done. Loopback only: the address is fixed here, the port is the only argument.
//
// Why not `guestfwd=...-tcp:127.0.0.1:PORT` (a chardev): qemu opens that chardev ONCE, at start,
// and feeds every guest connection into that one stream. HTTPS with keep-alive, a watch and
// parallel requests (what the plugin's Kubernetes client does) needs one host connection per
// guest connection; `guestfwd=...-cmd:PROGRAM` gives exactly that.
//
//   node guestfwd-bridge.mjs HOSTPORT
import * as net from "node:net"

const port = Number(process.argv[2])
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write(`guestfwd-bridge: bad port '${process.argv[2]}'\n`)
  process.exit(2)
}
const guest = new net.Socket({ fd: 0, readable: true, writable: true, allowHalfOpen: true })
const host = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true, noDelay: true })
guest.setNoDelay?.(true)
const done = () => {
  guest.destroy()
  host.destroy()
}
guest.on("error", done)
host.on("error", done)
guest.pipe(host)
host.pipe(guest)
let closed = 0
const closeOne = () => {
  if (++closed === 2) done()
}
guest.on("end", closeOne)
host.on("end", closeOne)
host.on("close", done)
guest.on("close", done)
