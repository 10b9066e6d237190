/**
 * A small long-lived process that forks the plugin's commands for it. A fork copies the page
 * tables of the process that forks, and libuv's spawn blocks the event loop until the child has
 * exec'd: for a ~70 MB Node that is 2–3 ms of this host's CPU per command and 20–60 ms under the
 * VM's emulation, paid on every connect, blkid, mkfs, mount and umount, and it stalls every other
 * RPC meanwhile. perl-base (Essential in Debian, so in every Debian image and node:*-slim) forks a
 * ~5 MB process instead, as cheaply as the shell the bare commands run from; Node only writes a
 * line and reads one back (bench/README.md, issue 12).
 *
 * The protocol is lines of space-separated hex fields (so any byte but NUL passes):
 *   ← `ready`                         once, when it has started
 *   → `env <hex K=V>...`             the environment for the commands that follow
 *   → `run <id> <hex argv>...`        fork, exec (PATH searched), stdin /dev/null, pipes for 1 and 2
 *   → `call <id> <hex name> <hex arg>...`   fork; the child makes one system call (`mount source
 *                                      target type flags data`, an empty type or data NULL, or
 *                                      `umount2 target flags`) and exits with its errno (0:
 *                                      done), strerror on stderr; reported as `exit`
 *   → `kill <id> <signal number>`     signal a running command
 *   ← `exit <id> <code> <signal> <hex stdout> <hex stderr>`   once reaped, its output drained
 *   ← `error <id> <errno> <hex message>`                      the exec (or fork) failed
 * A command is reported once it has exited: what it wrote is all in its pipes by then, so a
 * grandchild still holding them does not keep it waiting. On end of input the helper finishes
 * the commands it runs and exits. runCommand (Command.ts) falls back to Node's own spawn when
 * perl is not on PATH or the helper keeps dying.
 *
 * May import: node:child_process, node:net, process/Path.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { Socket } from "node:net"
import { onPath } from "./Path.ts"

// No modules, not even strict: perl starts in ~2 ms then (POSIX and IO::Select cost ten times
// that, most of a second under the VM's emulation). WNOHANG is 1 on Linux.
const SCRIPT = String.raw`
my %NR = (mount => $NR_MOUNT, umount2 => $NR_UMOUNT2, exit_group => $NR_EXIT_GROUP);
$| = 1; $SIG{PIPE} = 'IGNORE';
# A SIGCHLD also wakes a select that starts after it (a self-pipe): one that arrives between
# reap's waitpid and the next select would otherwise wait out that select's timeout.
pipe(my $wr, my $ww); my $woken = 0;
$SIG{CHLD} = sub { $woken++ or syswrite $ww, 'x' };
my ($buf, $eof, %jobs, %owner, %fhs) = ('', 0);
sub hx { unpack('H*', $_[0]) }
sub fail { my ($id, $what) = @_; return "error $id " . ($! + 0) . " " . hx("$what: $!") . "\n" }
sub start {
  my ($id, $argv, $call) = @_;
  pipe(my $or, my $ow) or return fail($id, 'pipe');
  pipe(my $er, my $ew) or return fail($id, 'pipe');
  pipe(my $xr, my $xw) or return fail($id, 'pipe');
  my $pid = fork();
  return fail($id, 'fork') unless defined $pid;
  if ($pid == 0) {
    close $or; close $er; close $xr;
    open(STDIN, '<', '/dev/null'); open(STDOUT, '>&', $ow); open(STDERR, '>&', $ew);
    $SIG{CHLD} = 'DEFAULT'; $SIG{PIPE} = 'DEFAULT';
    if ($call) {
      # No exec closes the exec-failure pipe: closed now, or the helper would wait for the call.
      close $xw;
      # syscall passes a string as a pointer to its bytes, a number as a long, undef as NULL.
      my ($name, @a) = @$argv; my $r = -1; $! = 22;
      if ($name eq 'mount' && $NR{mount} > 0) { $r = syscall($NR{mount}, $a[0], $a[1], length $a[2] ? $a[2] : undef, $a[3] + 0, length $a[4] ? $a[4] : undef) }
      elsif ($name eq 'umount2' && $NR{umount2} > 0) { $r = syscall($NR{umount2}, $a[0], $a[1] + 0) }
      my $code = 0;
      if ($r == -1) { $code = ($! + 0) || 1; print STDERR "$!" }
      # exit_group straight away: perl's own exit (global destruction) was half of a fork's cost.
      syscall($NR{exit_group}, $code) if $NR{exit_group} > 0;
      exit $code;
    }
    exec { $argv->[0] } @$argv;
    syswrite $xw, ($! + 0) . " $!"; exit 127;
  }
  close $ow; close $ew; close $xw;
  my $got = ''; while (sysread($xr, my $c, 512)) { $got .= $c } close $xr;
  if ($got ne '') {
    waitpid($pid, 0); close $or; close $er;
    my ($n, $m) = split / /, $got, 2; return "error $id $n " . hx($m) . "\n";
  }
  my $job = { pid => $pid, o => '', e => '', fd => {} };
  for (['o', $or], ['e', $er]) { my ($k, $fh) = @$_; $job->{fd}{$k} = fileno $fh; $fhs{fileno $fh} = $fh; $owner{fileno $fh} = [$id, $k] }
  $jobs{$id} = $job; return '';
}
sub readable { my $r = ''; vec($r, $_[0], 1) = 1; return select($r, undef, undef, 0) > 0 }
sub gone { my $fd = shift; close $fhs{$fd}; delete $fhs{$fd}; my $o = delete $owner{$fd}; delete $jobs{$o->[0]}{fd}{$o->[1]} if $jobs{$o->[0]} }
sub take {
  my ($fd, $all) = @_; my $o = $owner{$fd}; my $job = $jobs{$o->[0]};
  do { my $n = sysread($fhs{$fd}, my $c, 65536); if (!$n) { gone($fd); return } $job->{$o->[1]} .= $c } while ($all && readable($fd));
}
sub reap {
  for my $id (keys %jobs) {
    my $job = $jobs{$id};
    next unless waitpid($job->{pid}, 1) == $job->{pid};
    my $st = $?;
    # All it wrote is in its pipes now; a grandchild holding them does not keep it waiting.
    for my $fd (values %{$job->{fd}}) { take($fd, 1) if readable($fd); gone($fd) if $fhs{$fd} }
    my ($code, $sig) = ($st & 127) ? (-1, $st & 127) : ($st >> 8, 0);
    print "exit $id $code $sig " . hx($job->{o}) . " " . hx($job->{e}) . "\n";
    delete $jobs{$id};
  }
}
print "ready\n";
while (!$eof || %jobs) {
  my $want = ''; vec($want, 0, 1) = 1 unless $eof; vec($want, $_, 1) = 1 for keys %fhs; vec($want, fileno $wr, 1) = 1;
  if (select(my $r = $want, undef, undef, %jobs ? 0.05 : undef) > 0) {
    if (vec($r, fileno $wr, 1)) { sysread($wr, my $c, 64); $woken = 0 }
    if (!$eof && vec($r, 0, 1)) {
      my $n = sysread(STDIN, my $c, 65536);
      if (!$n) { $eof = 1 } else { $buf .= $c }
      while ($buf =~ s/^([^\n]*)\n//) {
        my @f = split / /, $1, -1; my $op = shift @f;
        if ($op eq 'env') { %ENV = (); for (map { pack('H*', $_) } grep { length } @f) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v } }
        elsif ($op eq 'run') { my $id = shift @f; print start($id, [map { pack('H*', $_) } @f]) }
        elsif ($op eq 'call') { my $id = shift @f; print start($id, [map { pack('H*', $_) } @f], 1) }
        elsif ($op eq 'kill') { my $job = $jobs{$f[0]}; kill($f[1] + 0, $job->{pid}) if $job }
      }
    }
    for my $fd (keys %fhs) { take($fd, 0) if $fhs{$fd} && vec($r, $fd, 1) }
  }
  reap();
}
`

/**
 * mount(2), umount2(2) and exit_group(2) by number on the architectures whose numbers are known
 * here (the kernel's own tables: arch/x86/entry/syscalls/syscall_64.tbl,
 * include/uapi/asm-generic/unistd.h).
 * Elsewhere the helper makes no system call and the mount layer runs mount and umount instead.
 */
const SYSCALL_NUMBERS: Partial<Record<string, { readonly mount: number; readonly umount2: number; readonly exitGroup: number }>> = {
  x64: { mount: 165, umount2: 166, exitGroup: 231 },
  arm64: { mount: 40, umount2: 39, exitGroup: 94 },
  riscv64: { mount: 40, umount2: 39, exitGroup: 94 }
}

/** Whether the helper makes binds and unmounts as system calls on `arch` (a process.arch). */
export const callsOn = (arch: string): boolean => SYSCALL_NUMBERS[arch] !== undefined

/** The system calls the helper can make for the mount layer. */
export type HelperCall =
  | {
    readonly name: "mount"
    readonly source: string
    readonly target: string
    /** The file system's type; empty for a bind or a remount (NULL). */
    readonly fsType: string
    readonly flags: number
    /** The file system's own options, comma-separated; empty for none (NULL). */
    readonly data: string
  }
  | { readonly name: "umount2"; readonly target: string; readonly flags: number }

/** How a command handed to the helper ended. */
export type HelperReply =
  | { readonly _tag: "Exit"; readonly code: number; readonly signal: number; readonly stdout: string; readonly stderr: string }
  | { readonly _tag: "ExecFailed"; readonly errno: number; readonly message: string }
  | { readonly _tag: "Lost"; readonly detail: string }

const hex = (s: string): string => Buffer.from(s, "utf8").toString("hex")
const unhex = (s: string | undefined): string => Buffer.from(s ?? "", "hex").toString("utf8")


class Helper {
  private readonly proc: ChildProcess
  private readonly pending = new Map<number, (r: HelperReply) => void>()
  private next = 0
  private sentEnv: string | undefined
  private input = ""
  private gone = false
  /** It has started and answers: until then runCommand spawns directly rather than wait. */
  ready = false
  /** It makes mount(2) and umount2(2) itself (call): this architecture's numbers are known. */
  readonly calls: boolean
  private readonly onGone: () => void

  constructor(perl: string, onGone: () => void) {
    this.onGone = onGone
    const nr = SYSCALL_NUMBERS[process.arch]
    this.calls = callsOn(process.arch)
    const script = SCRIPT.replace("$NR_MOUNT", String(nr?.mount ?? 0)).replace("$NR_UMOUNT2", String(nr?.umount2 ?? 0))
      .replace("$NR_EXIT_GROUP", String(nr?.exitGroup ?? 0))
    this.proc = spawn(perl, ["-e", script], { stdio: ["pipe", "pipe", "inherit"] })
    this.proc.on("error", (e) => this.lose(`the spawn helper failed: ${e.message}`))
    // "close", not "exit": the replies it wrote before it ended are read first.
    this.proc.on("close", (code, signal) => this.lose(`the spawn helper exited (${signal ?? `code ${code}`})`))
    this.proc.stdin?.on("error", () => {})
    this.proc.stdout?.setEncoding("utf8")
    this.proc.stdout?.on("data", (d: string) => this.read(d))
    // Never what keeps the plugin alive: a running command's own timer does that.
    this.proc.unref()
    for (const pipe of [this.proc.stdin, this.proc.stdout]) if (pipe instanceof Socket) pipe.unref()
  }

  /** Starts `argv` with `env`; `reply` is called once, when it has ended. Returns its id for kill. */
  run(argv: ReadonlyArray<string>, env: string, reply: (r: HelperReply) => void): number {
    const envLine = env === this.sentEnv ? "" : `env ${env}\n`
    if (!this.gone) this.sentEnv = env
    return this.send((id) => `${envLine}run ${id} ${argv.map(hex).join(" ")}\n`, reply)
  }

  /** Writes the lines for a new id, or replies Lost at once when it is gone. */
  private send(lines: (id: number) => string, reply: (r: HelperReply) => void): number {
    const id = this.next++
    if (this.gone) {
      reply({ _tag: "Lost", detail: "the spawn helper is gone" })
      return id
    }
    this.pending.set(id, reply)
    this.proc.stdin?.write(lines(id))
    return id
  }

  /** Makes `call` in a forked child (no exec); `reply` gets an Exit whose code is its errno. */
  call(call: HelperCall, reply: (r: HelperReply) => void): number {
    const args = call.name === "mount"
      ? [call.name, call.source, call.target, call.fsType, String(call.flags), call.data]
      : [call.name, call.target, String(call.flags)]
    return this.send((id) => `call ${id} ${args.map(hex).join(" ")}\n`, reply)
  }

  kill(id: number, signal: number): void {
    if (!this.gone && this.pending.has(id)) this.proc.stdin?.write(`kill ${id} ${signal}\n`)
  }

  private read(data: string): void {
    this.input += data
    let nl: number
    while ((nl = this.input.indexOf("\n")) >= 0) {
      const f = this.input.slice(0, nl).split(" ")
      this.input = this.input.slice(nl + 1)
      if (f[0] === "ready") {
        this.ready = !this.gone
        continue
      }
      const id = Number(f[1])
      const reply = this.pending.get(id)
      if (reply === undefined) continue
      this.pending.delete(id)
      if (f[0] === "exit") {
        reply({ _tag: "Exit", code: Number(f[2]), signal: Number(f[3]), stdout: unhex(f[4]), stderr: unhex(f[5]) })
      } else {
        reply({ _tag: "ExecFailed", errno: Number(f[2]), message: unhex(f[3]) })
      }
    }
  }

  private lose(detail: string): void {
    if (this.gone) return
    this.gone = true
    this.ready = false
    this.onGone()
    const waiting = [...this.pending.values()]
    this.pending.clear()
    for (const reply of waiting) reply({ _tag: "Lost", detail })
  }
}

/** After this many helpers have died, the process spawns its commands itself. */
const MAX_LOSSES = 3
let current: Helper | undefined
let losses = 0
let wanted = false

const helperNow = (): Helper | undefined => {
  if (current !== undefined) return current
  if (losses >= MAX_LOSSES || process.env.RDS_CSI_SPAWN === "direct") return undefined
  const perl = onPath("perl")
  if (perl === undefined) return undefined
  const helper: Helper = new Helper(perl, () => {
    losses++
    if (current === helper) current = undefined
  })
  current = helper
  return current
}

/**
 * Starts the helper (once; later calls return it). The node plugin calls it once its start-up is
 * done: starting it is one more fork of this process, which readiness should not wait behind.
 * Undefined when perl is not on PATH, the helper has died MAX_LOSSES times, or
 * RDS_CSI_SPAWN=direct.
 */
export const startSpawnHelper = (): Helper | undefined => {
  wanted = true
  return helperNow()
}

/** The helper, if startSpawnHelper was called: started again after it died (MAX_LOSSES times). */
export const spawnHelper = (): Helper | undefined => (wanted ? helperNow() : undefined)

export type { Helper }

let lastEnv: { readonly key: string; readonly line: string } | undefined

/**
 * The environment line the helper gets: this process's environment with `extra` on top. Encoded
 * again only when the environment (or `extra`) changed since the last command: hex-encoding every
 * variable was ~5 ms of each command under the VM's emulation, and a plugin's environment does
 * not change while it runs (a test's may: comparing the plain text is a third of the cost).
 */
export const envLine = (extra: Readonly<Record<string, string>>): string => {
  const env = { ...process.env, ...extra }
  let key = ""
  for (const k in env) if (env[k] !== undefined) key += `${k}=${env[k]}\0`
  if (lastEnv?.key === key) return lastEnv.line
  const line = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => hex(`${k}=${v}`)).join(" ")
  lastEnv = { key, line }
  return line
}
