/**
 * The spawn helper's perl side (SpawnHelper.ts has the protocol and the Node side): the script
 * it runs, with the system call numbers of this architecture written in, and the argv of a
 * `call`. Pure text; nothing here runs anything.
 *
 * May import: nothing.
 */

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


/** The script for `arch` (a process.arch): its numbers written in, or 0 (no call) when unknown. */
export const helperScript = (arch: string): string => {
  const nr = SYSCALL_NUMBERS[arch]
  return SCRIPT.replace("$NR_MOUNT", String(nr?.mount ?? 0)).replace("$NR_UMOUNT2", String(nr?.umount2 ?? 0))
    .replace("$NR_EXIT_GROUP", String(nr?.exitGroup ?? 0))
}

/** The fields of a `call` line, before hex encoding: the name, then the system call's arguments. */
export const callArgv = (call: HelperCall): ReadonlyArray<string> =>
  call.name === "mount"
    ? [call.name, call.source, call.target, call.fsType, String(call.flags), call.data]
    : [call.name, call.target, String(call.flags)]
