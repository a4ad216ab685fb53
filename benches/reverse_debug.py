#!/usr/bin/env python3
"""Reverse debugging over gdb's remote protocol, Rewind and QEMU side by side
(issue 12).

Makes a recording of a Linux guest that takes more than 5 billion steps
(Debian's riscv64 kernel, Rewind's default initramfs, one hart, 512 MiB), on
each emulator, and then times what a debugger asks of it through a gdb remote
protocol client written here (packets `$...#cs`, acknowledgements, `qRcmd`
monitor commands; no gdb): seeking, reverse-stepi, and reverse-continue to a
breakpoint whose previous hit is exactly 1 billion steps back.

The workload (/rdb_workload.sh, a small cpio archive appended to the default
initramfs, run by /init through rewind.run=) first prints the address of the
kernel function ksys_sync from /proc/kallsyms, then runs --phases phases of
CPU work, each begun by `sync`:

    sync                                   # the kernel's ksys_sync: a marker
    i=0; while [ $i -lt N ]; do i=$((i + 1)); done     # >1.3e9 steps, silent

Nothing else calls ksys_sync (but the `poweroff -f` at the very end), so a
breakpoint on it is hit once at the start of each phase, at positions M_1 ..
M_K, and a reverse-continue from M_k + 1e9 must stop exactly at M_k: the
previous hit is 1e9 steps back by construction, and the script checks the
position and pc it stops at.

Rewind (the release build; the recording is reused from --build-dir when the
workload, guest and binary are unchanged):

  record   rewind record -o F --kernel ... --initrd ... --firmware ...
               --mem 512M --smp 1 --append "... rewind.run=/rdb_workload.sh"
  replay   rewind replay F --serial none: the whole process, timed (forward
           replay speed, steps/s, the denominator of the issue's targets)
  gdb      rewind replay F --gdb unix:SOCK --checkpoint-interval I, then:
    sweep    a breakpoint (Z0) on ksys_sync and `vCont;c` from the start to
             the end (checkpoints are taken every I steps on the way): the
             positions M_k and the forward speed under gdb; at each hit one
             reverse-stepi (`bs`), the first after a breakpoint stop;
    reverse-continue  for each phase k (last first, --reverse-continues of
             them): `monitor seek` to M_k + 1e9, `bc`, `monitor when` (must
             be M_k), then `monitor seek M_k + 1e9` again from M_k: the same
             span replayed forward in the same session, the ratio's
             denominator;
    restore  `monitor seek` to positions that hold a checkpoint (multiples
             of I, each behind the last): a restore and no replay;
    seek     --seeks positions drawn uniformly over the recording with a fixed
             seed, in the order drawn (so forward and backward), each
             followed by 1 + --repeats reverse-stepi: the first after a seek
             and repeated ones.
  Each operation is timed from sending the packet to the end of its answer
  (wall), and by the CPU time the server process used meanwhile (the sum of
  /proc/PID/task/*/schedstat), which a busy host disturbs less.

QEMU (Debian's qemu-system-riscv64, and QEMU 10 from
../shared/tools/qemu10.sh's /tmp/trixie-qemu when it is there), the same
kernel, initramfs, OpenSBI and command line:

  record   qemu-system-riscv64 -M virt -m 512M -smp 1 ... -net none
               -icount shift=auto,rr=record,rrfile=F,rrsnapshot=init
               -drive file=empty.qcow2,if=none,id=rr
           (the qcow2 image, attached to no device, holds the snapshot `init`
           taken at the start, which reverse execution starts from)
  gdb      the same with rr=replay, -S and -gdb unix:SOCK (and -qmp, to watch
           the instruction count while gdb waits), then: the breakpoint and
           `c` up to M_K (QEMU positions are its instruction count, `monitor
           info replay`, which the gdb stub passes to the human monitor), the
           span M_K .. M_K + 1e9 forward (`monitor replay_seek`), then `bs`,
           `bs` again, `bc` (which should stop at M_K) and a backward
           `replay_seek`. QEMU keeps no checkpoints of its own: each of these
           loads the snapshot `init` and replays from the start. An operation
           during which QEMU's instruction count stops moving for
           --stall-seconds is abandoned, QEMU is ended, and the rest is n/a
           with that sentence.

The script prints the medians with the issue's targets beside them, and one
line per target: measured, and met or not. It never fails because something
is slow; it fails (exit status 1) when a run fails or Rewind answers wrongly,
2 when the guest is missing.

Python 3 standard library only. See benches/README.md.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (GUEST_SUBDIR, add_common_options, first_line, host_cpu,
                      log, rewind_binary, run_in_build_dir, table)
from linux_boot import (BenchError, Guest, HostCpu, build_initrd, cache_dir,
                        find_guest, program_output, rewind_revision)

GUEST_SCRIPT = "rdb_workload.sh"
# No virtio device on either side, so no modules (see linux_boot.py).
CMDLINE = f"console=ttyS0 rewind.modules=no rewind.run=/{GUEST_SCRIPT}"
# What Rewind's guest RTC reads at boot unless told (record_replay.py).
RTC_EPOCH = "2026-01-01T00:00:00"
MEM = "512M"

GUEST_SCRIPT_TEXT = r"""#!/bin/sh
# Written by benches/reverse_debug.py; /init runs it (rewind.run=/rdb_workload.sh).
# The address of ksys_sync, which the script sets its breakpoint on.
# /proc/kallsyms is sorted by address; -m 1 stops reading it at the match.
echo "rdb: $(grep -m 1 ' ksys_sync$' /proc/kallsyms)"
k=1
while [ $k -le @PHASES@ ]; do
    # The marker: sync(2) is the only caller of ksys_sync in the phase.
    sync
    # The phase: 1.3e9 to 1.9e9 steps of busybox sh (and the kernel's
    # timer interrupts), with no output and no system call.
    i=0
    while [ $i -lt @ITERATIONS@ ]; do i=$((i + 1)); done
    k=$((k + 1))
done
echo "rdb: done"
"""
ADDR_RE = re.compile(r"^rdb: ([0-9a-f]{16}) [Tt] ksys_sync\s*$", re.M)

# The targets.
TARGET_BS_MS = 50.0
TARGET_BC_RATIO = 2.5
TARGET_RECORDING_STEPS = 5_000_000_000

QEMU10_DEFAULT = "/tmp/trixie-qemu/qemu-system-riscv64"


class RunFailed(BenchError):
    """A run that failed, or an answer that is wrong (not merely slow)."""


class Stalled(Exception):
    """QEMU's instruction count stopped moving during an operation."""


# --------------------------------------------------------------------------
# The gdb remote protocol


class Gdb:
    """A gdb remote protocol client on a unix socket: packets `$data#cs`,
    `+` acknowledgements (until QStartNoAckMode is accepted), run-length
    encoded answers, `O` console packets before a monitor command's `OK`.
    `watch`, if given, is called about once a second while an answer is
    awaited; it raises to abandon the wait."""

    def __init__(self, path: str, timeout: float) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.timeout = timeout
        self.buf = b""
        self.ack = True
        self.watch = None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _byte(self, deadline: float) -> int:
        while not self.buf:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise RunFailed(f"no answer from the gdb server within "
                                f"{self.timeout:g} s")
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                if self.watch:
                    self.watch()
                continue
            except OSError as e:
                raise RunFailed("the gdb server closed the connection "
                                f"({e})") from e
            if not data:
                raise RunFailed("the gdb server closed the connection")
            self.buf = data
        b = self.buf[0]
        self.buf = self.buf[1:]
        return b

    def send(self, data: str) -> None:
        raw = data.encode("latin-1")
        packet = b"$%s#%02x" % (raw, sum(raw) & 0xFF)
        try:
            self.sock.sendall(packet)
        except OSError as e:
            raise RunFailed(f"the gdb server closed the connection ({e})") \
                from e
        if self.ack:
            deadline = time.perf_counter() + self.timeout
            while True:
                b = self._byte(deadline)
                if b == ord("+"):
                    break
                if b == ord("-"):
                    self.sock.sendall(packet)

    def recv(self, timeout: float | None = None) -> str:
        deadline = time.perf_counter() + (timeout or self.timeout)
        while self._byte(deadline) != ord("$"):
            pass
        body = bytearray()
        while (b := self._byte(deadline)) != ord("#"):
            body.append(b)
        self._byte(deadline)
        self._byte(deadline)
        if self.ack:
            try:
                self.sock.sendall(b"+")
            except OSError as e:
                raise RunFailed("the gdb server closed the connection "
                                f"({e})") from e
        out = bytearray()
        i = 0
        while i < len(body):
            c = body[i]
            if c == 0x7D:                       # escape
                out.append(body[i + 1] ^ 0x20)
                i += 2
            elif c == 0x2A and out:             # run-length: '*' count
                out += bytes([out[-1]]) * (body[i + 1] - 29)
                i += 2
            else:
                out.append(c)
                i += 1
        return out.decode("latin-1")

    def ask(self, data: str, timeout: float | None = None) -> str:
        self.send(data)
        return self.recv(timeout)

    def monitor(self, command: str) -> str:
        """`monitor COMMAND`: the text it printed. Raises on an error reply."""
        self.send("qRcmd," + command.encode().hex())
        text = ""
        while True:
            r = self.recv()
            if r.startswith("O") and r != "OK":
                text += bytes.fromhex(r[1:]).decode("utf-8", "replace")
                continue
            if r != "OK":
                raise RunFailed(f"`monitor {command}` answered {r!r}")
            return text.replace("\r", "")

    def handshake(self) -> str:
        features = self.ask("qSupported:swbreak+;hwbreak+;vContSupported+")
        if "QStartNoAckMode+" in features and \
                self.ask("QStartNoAckMode") == "OK":
            self.ack = False
        self.ask("?")
        return features

    def drain(self, wait: float = 0.2) -> None:
        """Drops whatever the server sent unasked within `wait` seconds (a
        stop packet QEMU 7.2 sends when a monitor command stops the
        machine)."""
        deadline = time.perf_counter() + wait
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
        self.buf = b""
        if self.ack:
            self.sock.sendall(b"+")

    def pc(self) -> int:
        """pc of the current thread (register 32 in the `g` packet)."""
        regs = self.ask("g")
        if len(regs) < 33 * 16:
            raise RunFailed(f"a `g` answer too short for pc: {regs[:40]!r}")
        return int.from_bytes(bytes.fromhex(regs[32 * 16:33 * 16]), "little")


def is_stop(reply: str) -> bool:
    return reply[:1] in ("T", "S")


# --------------------------------------------------------------------------
# Processes


class Server:
    """An emulator process serving gdb, in a session of its own (so that it
    and only it can be ended); stdout and stdin /dev/null, stderr to a file.
    cpu() is the CPU time of all its threads, from schedstat (ns)."""

    def __init__(self, cmd: list[str], stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self.err_f = open(stderr_path, "wb")
        self.start = time.perf_counter()
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL,
                                         stderr=self.err_f,
                                         start_new_session=True)
        except OSError as e:
            self.err_f.close()
            raise BenchError(f"cannot start {cmd[0]}: {e}") from e
        self.hz = os.sysconf("SC_CLK_TCK")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_alive(self, what: str) -> None:
        if not self.alive():
            last = self.stderr().strip().splitlines()
            raise RunFailed(f"{what}: the process exited with status "
                            f"{self.proc.returncode}"
                            + (f" ({last[-1].strip()})" if last else ""))

    def cpu(self) -> float:
        total = 0
        try:
            for f in glob.glob(f"/proc/{self.proc.pid}/task/*/schedstat"):
                with open(f, encoding="ascii") as s:
                    total += int(s.read().split()[0])
            return total / 1e9
        except (OSError, ValueError, IndexError):
            try:
                with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as s:
                    fields = s.read().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / self.hz
            except (OSError, ValueError, IndexError):
                return float("nan")

    def wait_for_socket(self, path: Path, timeout: float, what: str) -> float:
        deadline = time.perf_counter() + timeout
        while not path.exists():
            self.check_alive(what)
            if time.perf_counter() > deadline:
                raise RunFailed(f"{what}: no socket {path} within {timeout:g} s")
            time.sleep(0.005)
        return time.perf_counter() - self.start

    def end(self, timeout: float = 10.0) -> None:
        """Waits up to `timeout` for the exit, then kills the session."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.err_f.close()


def run_whole(cmd: list[str], timeout: float, err_path: Path
              ) -> tuple[float, float, str]:
    """Runs cmd to completion (stdin /dev/null); (wall s, CPU s, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(err_path, "wb") as err_f:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err_f,
                                    start_new_session=True)
        except OSError as e:
            raise RunFailed(f"cannot start {cmd[0]}: {e}") from e
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RunFailed(f"{Path(cmd[0]).name} {cmd[1] if len(cmd) > 1 else ''}"
                            f" did not exit within {timeout:g} s")
        wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    err = err_path.read_text(encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        last = err.strip().splitlines()
        raise RunFailed(f"{' '.join(cmd[:2])} ... failed with status "
                        f"{proc.returncode}" + (f": {last[-1]}" if last else ""))
    return wall, cpu, err


class Qmp:
    """QEMU's QMP socket: query-replay's instruction count while gdb waits."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.f = self.sock.makefile("rw", encoding="utf-8")
        self.f.readline()
        self.execute("qmp_capabilities")

    def execute(self, name: str) -> object:
        self.f.write(json.dumps({"execute": name}) + "\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise RunFailed("QEMU closed its QMP socket")
            m = json.loads(line)
            if "return" in m:
                return m["return"]
            if "error" in m:
                raise RunFailed(f"QMP {name}: {m['error']}")

    def icount(self) -> int | None:
        try:
            r = self.execute("query-replay")
            return int(r["icount"]) if isinstance(r, dict) else None
        except (OSError, ValueError, KeyError, RunFailed):
            return None

    def close(self) -> None:
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# Measurements


@dataclass
class Sample:
    """One operation: wall seconds, and the server's CPU seconds meanwhile."""
    wall: float
    cpu: float


@dataclass
class Results:
    """What one emulator's session measured (seconds)."""
    name: str
    error: str = ""                 # why nothing (or not everything) was measured
    reverse_error: str = ""         # why reverse operations are n/a
    record_wall: float | None = None
    record_cpu: float | None = None
    end: int | None = None          # the recording's last position
    hits: list[int] = field(default_factory=list)   # M_1 .. M_K (Rewind: and
                                                    # the power-off's sync)
    addr: int | None = None         # ksys_sync
    startup: float | None = None    # process start to its gdb socket
    plain: Sample | None = None     # the whole plain replay (Rewind)
    sweep: Sample | None = None     # continues from the start (to the end, or
    sweep_steps: int | None = None  # QEMU: to M_K) and the steps they took
    bs_after_stop: list[Sample] = field(default_factory=list)
    bs_after_seek: list[Sample] = field(default_factory=list)
    bs_repeat: list[Sample] = field(default_factory=list)
    bc: list[Sample] = field(default_factory=list)
    bc_span: list[int] = field(default_factory=list)
    forward_span: list[Sample] = field(default_factory=list)
    restore: list[Sample] = field(default_factory=list)
    seek_back: list[Sample] = field(default_factory=list)
    seek_fwd: list[Sample] = field(default_factory=list)
    seek_back_dist: list[int] = field(default_factory=list)
    seek_fwd_dist: list[int] = field(default_factory=list)
    info: str = ""                  # `monitor info` after the sweep
    notes: list[str] = field(default_factory=list)


def timed(server: Server, fn) -> tuple[object, Sample]:
    c0 = server.cpu()
    t0 = time.perf_counter()
    r = fn()
    wall = time.perf_counter() - t0
    return r, Sample(wall, server.cpu() - c0)


def med(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None and x == x]
    return statistics.median(xs) if xs else None


def wall_med(samples: list[Sample]) -> float | None:
    return med([s.wall for s in samples])


def cpu_med(samples: list[Sample]) -> float | None:
    return med([s.cpu for s in samples])


# --------------------------------------------------------------------------
# Rewind


class RewindTarget:
    """Rewind's gdb server: positions from `monitor when`, seeks with
    `monitor seek`."""

    def __init__(self, gdb: Gdb) -> None:
        self.gdb = gdb

    def position(self) -> int:
        text = self.gdb.monitor("when")
        m = re.match(r"\s*(\d+)", text)
        if not m:
            raise RunFailed(f"`monitor when` printed {text!r}")
        return int(m[1])

    def seek(self, position: int) -> None:
        text = self.gdb.monitor(f"seek {position}")
        m = re.match(r"\s*(\d+)", text)
        if not m or int(m[1]) != position:
            raise RunFailed(f"`monitor seek {position}` printed {text!r}")


def bp(gdb: Gdb, addr: int, on: bool) -> None:
    r = gdb.ask(f"{'Z' if on else 'z'}0,{addr:x},2")
    if r != "OK":
        raise RunFailed(f"the server answered {r!r} to a breakpoint at {addr:#x}")


def step_over(gdb: Gdb, addr: int) -> None:
    """What gdb does to continue from a breakpoint: remove it, step, put it
    back."""
    bp(gdb, addr, False)
    r = gdb.ask("vCont;s:1")
    if not is_stop(r):
        raise RunFailed(f"a single step answered {r!r}")
    bp(gdb, addr, True)


def rewind_session(rewind: str, rec: Path, r: Results, args: argparse.Namespace,
                   work: Path, sockdir: Path) -> None:
    sock = sockdir / "rewind.sock"
    sock.unlink(missing_ok=True)
    cmd = [rewind, "replay", str(rec), "--gdb", f"unix:{sock}",
           "--checkpoint-interval", str(args.interval),
           "--checkpoint-memory", args.checkpoint_memory]
    server = Server(cmd, work / "rewind-gdb.stderr")
    gdb = None
    try:
        r.startup = server.wait_for_socket(sock, args.timeout,
                                           "rewind replay --gdb")
        gdb = Gdb(str(sock), args.timeout)
        gdb.handshake()
        t = RewindTarget(gdb)
        if t.position() != 0:
            raise RunFailed("rewind replay --gdb did not start at position 0")
        bp(gdb, r.addr, True)

        # The sweep: to the end, through every hit.
        log("Rewind: the sweep: vCont;c from the start to the end ...")
        sweep_wall = sweep_cpu = 0.0
        while True:
            reply, s = timed(server, lambda: gdb.ask("vCont;c"))
            sweep_wall += s.wall
            sweep_cpu += s.cpu
            if not is_stop(reply):
                raise RunFailed(f"vCont;c answered {reply!r}")
            here = t.position()
            if "replaylog:end" in reply:
                r.end = here
                break
            pc = gdb.pc()
            if pc != r.addr:
                raise RunFailed(f"vCont;c stopped at pc {pc:#x}, position "
                                f"{here}, not at the breakpoint {r.addr:#x}")
            r.hits.append(here)
            if args.verbose:
                log(f"  hit {len(r.hits)} at position {here} "
                    f"({s.wall:.1f} s wall, {s.cpu:.1f} s CPU)")
            # The first reverse-stepi after a breakpoint stop.
            reply, s = timed(server, lambda: gdb.ask("bs"))
            if not is_stop(reply) or t.position() != here - 1:
                raise RunFailed(f"bs at position {here} answered {reply!r} "
                                f"and went to {t.position()}")
            r.bs_after_stop.append(s)
            t.seek(here)
            step_over(gdb, r.addr)
        r.sweep = Sample(sweep_wall, sweep_cpu)
        r.sweep_steps = r.end
        r.info = gdb.monitor("info").strip()
        log(f"Rewind: end at position {r.end}, hits at {r.hits}; "
            f"{r.info.splitlines()[-1] if r.info else ''}")

        # Reverse-continue over exactly SPAN, last phase first.
        phases = [k for k in range(len(r.hits) - 1)
                  if r.hits[k] + args.span < r.hits[k + 1]]
        short = len(r.hits) - 1 - len(phases)
        if short:
            r.notes.append(f"{short} phase(s) shorter than the span were "
                           "left out of reverse-continue")
        for k in list(reversed(phases))[:args.reverse_continues]:
            start, mark = r.hits[k] + args.span, r.hits[k]
            log(f"Rewind: reverse-continue from {start} to the hit at {mark} ...")
            t.seek(start)
            reply, s = timed(server, lambda: gdb.ask("bc"))
            here = t.position()
            if not is_stop(reply) or here != mark or gdb.pc() != r.addr:
                raise RunFailed(f"bc from {start} answered {reply!r} and "
                                f"stopped at {here}, not at the previous "
                                f"hit {mark}")
            r.bc.append(s)
            r.bc_span.append(start - here)
            _, s = timed(server, lambda: t.seek(start))
            r.forward_span.append(s)
            if args.verbose:
                log(f"  bc {r.bc[-1].wall:.2f} s wall, forward "
                    f"{s.wall:.2f} s wall")

        # Restores: seek to checkpoints' own positions, each behind the last.
        here = t.position()
        rng = random.Random(args.seed)
        multiples = list(range(args.interval, here, args.interval))
        chosen = sorted(rng.sample(multiples, min(args.restores, len(multiples))),
                        reverse=True)
        log(f"Rewind: {len(chosen)} restores, {args.seeks} seeks ...")
        for p in chosen:
            _, s = timed(server, lambda: t.seek(p))
            r.restore.append(s)

        # Seeks anywhere, in the order drawn, each followed by reverse-stepi.
        for _ in range(args.seeks):
            here = t.position()
            p = rng.randrange(1, r.end)
            _, s = timed(server, lambda: t.seek(p))
            if p < here:
                r.seek_back.append(s)
                r.seek_back_dist.append(here - p)
            else:
                r.seek_fwd.append(s)
                r.seek_fwd_dist.append(p - here)
            if args.verbose:
                log(f"  seek {here} -> {p}: {s.wall * 1000:.1f} ms wall")
            for j in range(1 + args.repeats):
                reply, s = timed(server, lambda: gdb.ask("bs"))
                if not is_stop(reply) or t.position() != p - 1 - j:
                    raise RunFailed(f"bs at {p - j} answered {reply!r} and "
                                    f"went to {t.position()}")
                (r.bs_after_seek if j == 0 else r.bs_repeat).append(s)
        try:
            gdb.send("D")
            gdb.recv(timeout=10)
        except (RunFailed, OSError):
            pass
    finally:
        if gdb:
            gdb.close()
        server.end()


def rewind_part(rewind: str, guest: Guest, initrd: Path, r: Results,
                args: argparse.Namespace, work: Path, sockdir: Path,
                stamp: dict) -> None:
    rec = work / "rewind.rwd"
    console = work / "rewind-record-console.txt"
    report = work / "rewind-record.json"
    stamp_path = work / "rewind-recording.json"
    stamp = dict(stamp, rewind=file_id(Path(rewind)))
    old = read_json(stamp_path)
    if rec.exists() and old and old.get("stamp") == stamp:
        log(f"Rewind: reusing the recording {rec}")
        r.record_wall, r.record_cpu = old["wall"], old["cpu"]
        r.notes.append(f"recording reused from {rec} (recorded in "
                       f"{old['wall']:.1f} s)")
    else:
        stamp_path.unlink(missing_ok=True)
        log("Rewind: recording the workload ...")
        cmd = [rewind, "record", "-o", str(rec), "--kernel", str(guest.kernel),
               "--initrd", str(initrd), "--firmware", str(guest.firmware),
               "--mem", MEM, "--smp", "1", "--append", CMDLINE,
               "--serial", f"file:{console}", "--report", str(report)]
        r.record_wall, r.record_cpu, _ = run_whole(
            cmd, args.timeout, work / "rewind-record.stderr")
        stamp_path.write_text(json.dumps({"stamp": stamp,
                                          "wall": r.record_wall,
                                          "cpu": r.record_cpu}))
    text = console.read_text(encoding="utf-8", errors="replace")
    err, _ = program_output(text)
    if err:
        raise RunFailed(f"Rewind's recording: {err}")
    m = ADDR_RE.search(text)
    if not m:
        raise RunFailed("Rewind's recording printed no `rdb: ADDR T ksys_sync`")
    r.addr = int(m[1], 16)
    recorded_end = json.loads(report.read_text())["position"]

    log("Rewind: replaying it plainly ...")
    wall, cpu, err_text = run_whole(
        [rewind, "replay", str(rec), "--serial", "none", "--report",
         str(work / "rewind-replay.json")], args.timeout,
        work / "rewind-replay.stderr")
    if "matches the recording" not in err_text:
        raise RunFailed("rewind replay did not match its recording: "
                        + err_text.strip()[-200:])
    r.plain = Sample(wall, cpu)
    rewind_session(rewind, rec, r, args, work, sockdir)
    if r.end != recorded_end:
        raise RunFailed(f"the replay under gdb ended at {r.end}, the "
                        f"recording at {recorded_end}")


# --------------------------------------------------------------------------
# QEMU


class QemuTarget:
    """QEMU's gdb stub: positions from `monitor info replay` (the human
    monitor, through qRcmd). A seek forward is `monitor replay_break N` and
    `c`; a seek backward is `monitor replay_seek N` (which loads the
    snapshot `init`), which answers at once and stops the machine later,
    telling gdb nothing (QEMU 10) or with a stop packet (7.2): its end is
    watched for over QMP, and a stop packet, if any, is dropped."""

    def __init__(self, gdb: Gdb, qmp: Qmp, stall_seconds: float) -> None:
        self.gdb = gdb
        self.qmp = qmp
        self.stall_seconds = stall_seconds

    def position(self) -> int:
        text = self.gdb.monitor("info replay")
        m = re.search(r"instruction count = (\d+)", text)
        if not m:
            raise RunFailed(f"`monitor info replay` printed {text!r}")
        return int(m[1])

    def seek(self, position: int, to_hit: int | None = None) -> None:
        """Seeks; going forward, with `to_hit` (a breakpoint's address) it
        may stop short at a hit of that breakpoint."""
        if position >= self.position():
            text = self.gdb.monitor(f"replay_break {position}")
            if text.strip():
                raise RunFailed(f"`monitor replay_break {position}`: "
                                f"{text.strip()}")
            reply = self.gdb.ask("c")
            if not is_stop(reply):
                raise RunFailed(f"c to replay_break {position} answered "
                                f"{reply!r}")
            if to_hit is not None and self.gdb.pc() == to_hit:
                self.gdb.monitor("replay_delete_break")
                return
        else:
            text = self.gdb.monitor(f"replay_seek {position}")
            if text.strip():
                raise RunFailed(f"`monitor replay_seek {position}`: "
                                f"{text.strip()}")
            last, since = None, time.perf_counter()
            while True:
                status = self.qmp.execute("query-status")
                n = self.qmp.icount()
                running = isinstance(status, dict) and status.get("running")
                if not running and n == position:
                    break
                now = time.perf_counter()
                if n != last:
                    last, since = n, now
                elif now - since >= self.stall_seconds:
                    raise Stalled(n)
                time.sleep(0.002)
            self.gdb.drain()
        here = self.position()
        if here != position:
            raise RunFailed(f"a seek to {position} stopped at {here}")


def qemu_version(qemu: str) -> str:
    line = first_line([qemu, "--version"])
    m = re.search(r"version (\S+)", line)
    return m[1] if m else line


def qemu_img_for(qemu: str) -> str:
    beside = Path(qemu).parent / "qemu-img"
    if os.sep in qemu and beside.exists():
        return str(beside)
    return shutil.which("qemu-img") or "qemu-img"


def qemu_cmd(qemu: str, guest: Guest, initrd: Path, icount: str,
             qcow2: Path, serial: str) -> list[str]:
    return [qemu, "-M", "virt", "-m", MEM, "-smp", "1",
            "-bios", str(guest.firmware), "-kernel", str(guest.kernel),
            "-initrd", str(initrd), "-append", CMDLINE,
            "-icount", icount, "-rtc", f"base={RTC_EPOCH},clock=vm",
            "-drive", f"file={qcow2},if=none,id=rr",
            "-net", "none", "-no-reboot", "-display", "none",
            "-monitor", "none", "-serial", serial]


def qemu_part(qemu: str, guest: Guest, initrd: Path, r: Results,
              args: argparse.Namespace, work: Path, sockdir: Path,
              stamp: dict, tag: str) -> None:
    rr = work / f"{tag}.rr"
    qcow2 = work / f"{tag}.qcow2"
    console = work / f"{tag}-record-console.txt"
    stamp_path = work / f"{tag}-recording.json"
    stamp = dict(stamp, qemu=first_line([qemu, "--version"]))
    old = read_json(stamp_path)
    if rr.exists() and qcow2.exists() and old and old.get("stamp") == stamp:
        log(f"{r.name}: reusing the recording {rr}")
        r.record_wall, r.record_cpu = old["wall"], old["cpu"]
    else:
        stamp_path.unlink(missing_ok=True)
        for p in (rr, qcow2):
            p.unlink(missing_ok=True)
        p = subprocess.run([qemu_img_for(qemu), "create", "-q", "-f", "qcow2",
                            str(qcow2), "1G"], capture_output=True, text=True,
                           check=False)
        if p.returncode != 0:
            raise RunFailed(f"qemu-img create failed: {p.stderr.strip()}")
        log(f"{r.name}: recording the workload ...")
        r.record_wall, r.record_cpu, _ = run_whole(
            qemu_cmd(qemu, guest, initrd,
                     f"shift=auto,rr=record,rrfile={rr},rrsnapshot=init",
                     qcow2, f"file:{console}"),
            args.timeout, work / f"{tag}-record.stderr")
        stamp_path.write_text(json.dumps({"stamp": stamp,
                                          "wall": r.record_wall,
                                          "cpu": r.record_cpu}))
    text = console.read_text(encoding="utf-8", errors="replace")
    err, _ = program_output(text)
    if err:
        raise RunFailed(f"{r.name}'s recording: {err}")
    m = ADDR_RE.search(text)
    if not m:
        raise RunFailed(f"{r.name}'s recording printed no ksys_sync address")
    r.addr = int(m[1], 16)

    sock, qmp_path = sockdir / f"{tag}.sock", sockdir / f"{tag}.qmp"
    for p in (sock, qmp_path):
        p.unlink(missing_ok=True)
    cmd = qemu_cmd(qemu, guest, initrd,
                   f"shift=auto,rr=replay,rrfile={rr},rrsnapshot=init",
                   qcow2, "null")
    cmd += ["-S", "-gdb", f"unix:{sock},server=on,wait=off",
            "-qmp", f"unix:{qmp_path},server=on,wait=off"]
    server = Server(cmd, work / f"{tag}-gdb.stderr")
    gdb = qmp = None
    try:
        r.startup = server.wait_for_socket(sock, args.timeout, r.name)
        server.wait_for_socket(qmp_path, args.timeout, r.name)
        gdb = Gdb(str(sock), args.timeout)
        qmp = Qmp(qmp_path, args.timeout)
        features = gdb.handshake()
        if "ReverseStep+" not in features:
            r.reverse_error = "its gdb stub offers no reverse execution"
        t = QemuTarget(gdb, qmp, args.stall_seconds)
        bp(gdb, r.addr, True)

        # Forward: to the last workload hit M_K (past it QEMU would replay
        # the power-off and exit).
        log(f"{r.name}: c to each breakpoint hit ...")
        sweep_wall = sweep_cpu = 0.0
        while len(r.hits) < args.phases:
            if r.hits:
                step_over(gdb, r.addr)
            reply, s = timed(server, lambda: gdb.ask("c"))
            sweep_wall += s.wall
            sweep_cpu += s.cpu
            if not is_stop(reply):
                raise RunFailed(f"c answered {reply!r}")
            if gdb.pc() != r.addr:
                raise RunFailed(f"c stopped at pc {gdb.pc():#x}, not at the "
                                "breakpoint")
            r.hits.append(t.position())
        r.sweep = Sample(sweep_wall, sweep_cpu)
        r.sweep_steps = r.hits[-1]
        log(f"{r.name}: hits at {r.hits}")

        # The span M_K .. M_K + SPAN forward, the breakpoint still set: a
        # hit before the end of the span (the power-off's sync) would stop
        # it short, and there is no going back to try another phase.
        mark = r.hits[-1]
        start = mark + args.span
        step_over(gdb, r.addr)
        _, s = timed(server, lambda: t.seek(start, to_hit=r.addr))
        here = t.position()
        if here != start:
            r.notes.append(f"the last phase is shorter than the span: the "
                           f"breakpoint was hit again at {here:,}")
            r.reverse_error = "nothing reverse was tried (see the note)"
            return
        r.forward_span.append(s)
        if r.reverse_error:
            return

        # Reverse operations; a stall of the instruction count ends them.
        state = {"icount": None, "since": time.perf_counter()}

        def watch() -> None:
            n = qmp.icount()
            now = time.perf_counter()
            if n is None or n != state["icount"]:
                state["icount"], state["since"] = n, now
            elif now - state["since"] >= args.stall_seconds:
                raise Stalled(n)

        def stalled(what: str, icount: int | None) -> None:
            here = f"{icount:,}" if icount is not None else "?"
            r.reverse_error = (
                f"its {what} never answered: QEMU loaded the snapshot `init` "
                f"(instruction 0) to replay forward from it, and the replay "
                f"stopped at instruction {here} (the machine running, the "
                f"count unchanged for {args.stall_seconds:g} s); "
                f"reverse-stepi, reverse-continue and backward seeks all "
                f"load a snapshot, so they are n/a")

        def reverse(what: str, packet: str) -> tuple[str, Sample]:
            state["icount"], state["since"] = None, time.perf_counter()
            gdb.watch = watch
            try:
                return timed(server, lambda: gdb.ask(packet))
            except Stalled as e:
                stalled(what, e.args[0])
                raise
            finally:
                gdb.watch = None

        try:
            log(f"{r.name}: bs from {start} (loads the snapshot `init`) ...")
            reply, s = reverse("reverse-stepi (bs)", "bs")
            if not is_stop(reply) or t.position() != start - 1:
                raise RunFailed(f"bs answered {reply!r}")
            r.bs_after_seek.append(s)
            reply, s = reverse("reverse-stepi (bs)", "bs")
            r.bs_repeat.append(s)
            log(f"{r.name}: bc to the hit at {mark} ...")
            reply, s = reverse("reverse-continue (bc)", "bc")
            here = t.position()
            r.bc.append(s)
            r.bc_span.append(start - 2 - here)
            if here != mark:
                r.notes.append(f"bc from {start - 2} stopped at {here}, not "
                               f"at the previous hit {mark}")
            p = random.Random(args.seed).randrange(1, mark)
            try:
                _, s = timed(server, lambda: t.seek(p))
            except Stalled as e:
                stalled("backward seek (replay_seek)", e.args[0])
                raise
            r.seek_back.append(s)
            r.seek_back_dist.append(here - p)
        except Stalled:
            log(f"{r.name}: {r.reverse_error}")
    finally:
        if gdb:
            gdb.close()
        if qmp:
            qmp.close()
        if server.alive():
            os.killpg(server.proc.pid, signal.SIGTERM)
        server.end(timeout=10)


# --------------------------------------------------------------------------
# Helpers


def file_id(path: Path) -> list:
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def ms(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x * 1000:.{digits}f}"


def div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def mrate(steps: int | None, sample: Sample | None, what: str) -> float | None:
    """Millions of steps per second of `sample`'s wall or CPU time."""
    secs = getattr(sample, what) if sample else None
    return steps / secs / 1e6 if steps is not None and secs else None


# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Seek, reverse-stepi and reverse-continue over gdb's "
                    "remote protocol on a long Linux recording, on Rewind "
                    "and QEMU.")
    ap.add_argument("--phases", type=int, default=3,
                    help="CPU phases of the workload, each begun by sync "
                         "(default 3: about 6e9 steps in all)")
    ap.add_argument("--iterations", type=int, default=90000,
                    help="shell-loop iterations per phase (default 90000: "
                         "1.3e9 to 1.9e9 steps)")
    ap.add_argument("--span", type=int, default=1_000_000_000,
                    help="steps back to the breakpoint's previous hit in "
                         "reverse-continue (default 1e9)")
    ap.add_argument("--reverse-continues", type=int, default=3,
                    help="reverse-continue samples, one per phase, last "
                         "first (default 3)")
    ap.add_argument("--seeks", type=int, default=6,
                    help="seeks to random positions (default 6)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="reverse-stepi after the first, after each seek "
                         "(default 3)")
    ap.add_argument("--restores", type=int, default=5,
                    help="seeks to checkpoints' own positions (default 5)")
    ap.add_argument("--seed", type=int, default=12,
                    help="seed of the random positions (default 12)")
    ap.add_argument("--interval", type=int, default=100_000_000,
                    help="rewind's --checkpoint-interval (default 1e8, its "
                         "default)")
    ap.add_argument("--checkpoint-memory", default="1G",
                    help="rewind's --checkpoint-memory (default 1G, its "
                         "default)")
    ap.add_argument("--qemu10", default=QEMU10_DEFAULT,
                    help="a second QEMU, measured too when it exists "
                         f"(default {QEMU10_DEFAULT}; `none` to skip)")
    ap.add_argument("--no-qemu", action="store_true",
                    help="measure Rewind only")
    ap.add_argument("--stall-seconds", type=float, default=10.0,
                    help="QEMU: abandon an operation when its instruction "
                         "count has not moved for this long (default 10)")
    add_common_options(ap, keeps="the initramfs, the recordings (reused when "
                       "the workload, guest and binaries are unchanged) and "
                       "consoles", timeout_for="one run or one operation",
                       verbose="print every hit, seek and reverse operation")
    args = ap.parse_args()
    for name in ("phases", "iterations", "span", "interval"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1")
    for name in ("seeks", "repeats", "restores", "reverse_continues"):
        if getattr(args, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must not be negative")
    return run_in_build_dir(args.build_dir, "reverse_debug.",
                            lambda work: bench(args, work),
                            [(RunFailed, 1), (BenchError, 2)])


def bench(args: argparse.Namespace, work: Path) -> int:
    start_load = os.getloadavg()
    rewind_path, rewind_reason = rewind_binary(args.no_build, args.rewind)
    rewind = str(rewind_path) if rewind_path else None
    gdir = args.guest_dir or cache_dir() / GUEST_SUBDIR
    guest = find_guest(gdir, rewind_path, args.timeout)

    script = work / GUEST_SCRIPT
    script.write_text(GUEST_SCRIPT_TEXT
                      .replace("@PHASES@", str(args.phases))
                      .replace("@ITERATIONS@", str(args.iterations)),
                      encoding="utf-8")
    initrd = work / "initramfs-rdb.cpio"
    build_initrd(guest.initrd, {GUEST_SCRIPT: script}, initrd)
    stamp = {"initrd": hashlib.sha256(initrd.read_bytes()).hexdigest(),
             "kernel": file_id(guest.kernel), "mem": MEM,
             "cmdline": CMDLINE}

    qemus: list[tuple[str, str]] = []
    if not args.no_qemu:
        for q in (args.qemu, args.qemu10):
            if q and q != "none" and (shutil.which(q) or Path(q).exists()):
                if all(qemu_version(q) != qemu_version(x) for x, _ in qemus):
                    qemus.append((q, f"qemu{len(qemus) + 1}"))
            elif q == args.qemu:
                log(f"QEMU: {q} not found (Debian package qemu-system-misc)")

    host = HostCpu()
    t0 = os.times()
    busy0 = host.busy_seconds()
    wall0 = time.perf_counter()
    loads = [os.getloadavg()[0]]
    sockdir = Path(tempfile.mkdtemp(prefix="rdb."))
    rw = Results("Rewind")
    qs: list[Results] = []
    try:
        if rewind is None:
            rw.error = rewind_reason
        else:
            rewind_part(rewind, guest, initrd, rw, args, work, sockdir, stamp)
        loads.append(os.getloadavg()[0])
        for q, tag in qemus:
            res = Results(f"QEMU {qemu_version(q)}")
            qs.append(res)
            try:
                qemu_part(q, guest, initrd, res, args, work, sockdir, stamp,
                          tag)
            except (RunFailed, BenchError, OSError) as e:
                res.error = str(e)
                log(f"{res.name}: n/a: {e}")
            loads.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)

    busy1 = host.busy_seconds()
    t1 = os.times()
    wall = time.perf_counter() - wall0
    others = None
    if busy0 is not None and busy1 is not None and wall > 0:
        others = max(0.0, (busy1 - busy0 - (sum(t1[:4]) - sum(t0[:4]))) / wall)
    report(args, guest, rw, qs, qemus, start_load, loads, others, wall)
    if args.json:
        def dump(x: Results) -> dict:
            d = x.__dict__.copy()
            for k, v in d.items():
                if isinstance(v, Sample):
                    d[k] = v.__dict__
                elif isinstance(v, list) and v and isinstance(v[0], Sample):
                    d[k] = [s.__dict__ for s in v]
            return d
        args.json.write_text(json.dumps({
            "host_cpu": host_cpu(), "rewind_revision": rewind_revision(),
            "kernel_version": guest.version, "args": {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in vars(args).items()},
            "load_average_start": list(start_load), "load_average": loads,
            "other_processes_cpus": others,
            "rewind": dump(rw), "qemu": [dump(q) for q in qs]}, indent=2)
            + "\n", encoding="utf-8")
    return 0


# --------------------------------------------------------------------------
# The report


def report(args: argparse.Namespace, guest: Guest, rw: Results,
           qs: list[Results], qemus: list[tuple[str, str]],
           start_load: tuple[float, float, float], loads: list[float],
           others: float | None, wall: float) -> None:
    ncpu = os.cpu_count() or 1
    print(f"host CPU:  {host_cpu()}")
    print(f"host OS:   {platform.system()} {platform.release()}")
    for (q, _), res in zip(qemus, qs):
        print(f"QEMU:      {q}: {first_line([q, '--version'])}")
    print(f"rewind:    {args.rewind} ({rewind_revision()})"
          + (f" -- n/a: {rw.error}" if rw.error else ""))
    print(f"guest:     Linux {guest.version}; {MEM} RAM, 1 hart; "
          f"/{GUEST_SCRIPT}: {args.phases} phases of {args.iterations} "
          "shell-loop iterations, each begun by sync (the breakpoint: "
          + (f"ksys_sync at {rw.addr:#x})" if rw.addr else "ksys_sync)"))
    if rw.end:
        gap = [b - a for a, b in zip(rw.hits, rw.hits[1:])]
        print(f"recording: Rewind {rw.end:,} steps; breakpoint hits at "
              + ", ".join(f"{h:,}" for h in rw.hits)
              + (f" (from hit to hit {min(gap) / 1e9:.2f} to "
                 f"{max(gap) / 1e9:.2f}e9 steps)" if gap else ""))
    for res in qs:
        if res.hits:
            print(f"           {res.name}: hits at instruction counts "
                  + ", ".join(f"{h:,}" for h in res.hits))
    print(f"runs:      one session each; {args.seeks} seeks (seed {args.seed}) "
          f"with 1 + {args.repeats} reverse-stepi each, {args.restores} "
          f"restores, {len(rw.bc)} reverse-continues over {args.span:,} "
          f"steps; Rewind --checkpoint-interval {args.interval:,}; "
          f"{wall / 60:.1f} minutes in all")
    print(f"host load: load average {start_load[0]:.2f} {start_load[1]:.2f} "
          f"{start_load[2]:.2f} at the start; 1-minute {min(loads):.2f} to "
          f"{max(loads):.2f} during the runs")
    if others is not None:
        print(f"           other processes kept {others:.2f} of {ncpu} CPUs "
              "busy on average during the runs")
    if start_load[0] > max(1.0, 0.25 * ncpu) or \
            (others is not None and others > 0.25):
        print("WARNING:   the host was busy with other work; wall times are "
              "inflated and noisy; CPU times are steadier")
    print()

    # The forward replay speed the targets are stated against.
    plain_rate = div(rw.end, rw.plain.wall) if rw.plain else None
    plain_rate_cpu = div(rw.end, rw.plain.cpu) if rw.plain else None
    restore = wall_med(rw.restore)
    restore_cpu = cpu_med(rw.restore)
    seek_limit = (restore + args.interval / plain_rate
                  if restore is not None and plain_rate else None)
    seek_limit_cpu = (restore_cpu + args.interval / plain_rate_cpu
                      if restore_cpu is not None and plain_rate_cpu else None)
    bs_all = rw.bs_after_seek + rw.bs_after_stop + rw.bs_repeat
    ratio_fwd = [b.wall / f.wall for b, f in zip(rw.bc, rw.forward_span)]
    ratio_fwd_cpu = [b.cpu / f.cpu for b, f in zip(rw.bc, rw.forward_span)
                     if f.cpu]
    ratio_plain = ([b.wall / (span / plain_rate)
                    for b, span in zip(rw.bc, rw.bc_span)]
                   if plain_rate else [])
    ratio_plain_cpu = ([b.cpu / (span / plain_rate_cpu)
                        for b, span in zip(rw.bc, rw.bc_span)]
                       if plain_rate_cpu else [])

    def mx(samples: list[Sample], what: str = "wall") -> float | None:
        xs = [getattr(s, what) for s in samples]
        return max(xs) if xs else None

    def n(samples: list) -> str:
        return str(len(samples))

    print("Rewind, medians (wall: from the packet to its answer; CPU: the "
          "server process's CPU time meanwhile):")
    rows = [
        ["plain replay (`rewind replay`, whole process), Msteps/s",
         fmt(mrate(rw.end, rw.plain, "wall")),
         fmt(mrate(rw.end, rw.plain, "cpu")), "1", "-"],
        ["replay --gdb start-up to waiting for gdb, ms", ms(rw.startup, 0),
         "-", "1", "-"],
        ["sweep: vCont;c start to end, breakpoint set, Msteps/s",
         fmt(mrate(rw.sweep_steps, rw.sweep, "wall")),
         fmt(mrate(rw.sweep_steps, rw.sweep, "cpu")), "1", "-"],
        ["seek backward to a random position, ms", ms(wall_med(rw.seek_back)),
         ms(cpu_med(rw.seek_back)), n(rw.seek_back),
         f"<= {ms(seek_limit, 0)}"],
        ["  the slowest, ms", ms(mx(rw.seek_back)),
         ms(mx(rw.seek_back, "cpu")), "", f"<= {ms(seek_limit, 0)}"],
        ["seek forward to a random position, ms", ms(wall_med(rw.seek_fwd)),
         ms(cpu_med(rw.seek_fwd)), n(rw.seek_fwd), f"<= {ms(seek_limit, 0)}"],
        ["  the slowest, ms", ms(mx(rw.seek_fwd)), ms(mx(rw.seek_fwd, "cpu")),
         "", f"<= {ms(seek_limit, 0)}"],
        ["restore: seek to a checkpoint's own position, ms", ms(restore),
         ms(restore_cpu), n(rw.restore), "-"],
        ["reverse-stepi, first after a seek, ms",
         ms(wall_med(rw.bs_after_seek)), ms(cpu_med(rw.bs_after_seek)),
         n(rw.bs_after_seek), f"<= {TARGET_BS_MS:.0f}"],
        ["reverse-stepi, first after a breakpoint stop (vCont;c), ms",
         ms(wall_med(rw.bs_after_stop)), ms(cpu_med(rw.bs_after_stop)),
         n(rw.bs_after_stop), f"<= {TARGET_BS_MS:.0f}"],
        ["reverse-stepi, repeated, ms", ms(wall_med(rw.bs_repeat)),
         ms(cpu_med(rw.bs_repeat)), n(rw.bs_repeat),
         f"<= {TARGET_BS_MS:.0f}"],
        ["reverse-stepi, all of them, ms", ms(wall_med(bs_all)),
         ms(cpu_med(bs_all)), n(bs_all), f"<= {TARGET_BS_MS:.0f}"],
        [f"reverse-continue, previous hit {args.span / 1e9:g}e9 steps back, s",
         fmt(wall_med(rw.bc), 2), fmt(cpu_med(rw.bc), 2), n(rw.bc), "-"],
        ["  the same span forward (monitor seek, same session), s",
         fmt(wall_med(rw.forward_span), 2), fmt(cpu_med(rw.forward_span), 2),
         n(rw.forward_span), "-"],
        ["  reverse-continue / that forward replay",
         fmt(med(ratio_fwd), 2), fmt(med(ratio_fwd_cpu), 2), n(ratio_fwd),
         f"<= {TARGET_BC_RATIO}"],
        ["  reverse-continue / the span at plain replay's speed",
         fmt(med(ratio_plain), 2), fmt(med(ratio_plain_cpu), 2),
         n(ratio_plain), f"<= {TARGET_BC_RATIO}"],
    ]
    print(table(["", "wall", "CPU", "samples", "target"], rows))
    if seek_limit is not None:
        print(f"(seek target: one checkpoint interval ({args.interval:,} "
              f"steps) at plain replay's speed, {args.interval / plain_rate * 1000:.0f} ms, "
              f"plus the median restore, {restore * 1000:.1f} ms; by CPU "
              f"{seek_limit_cpu * 1000:.0f} ms)")
    if rw.seek_back_dist or rw.seek_fwd_dist:
        print(f"(seek distances: backward "
              + (", ".join(f"{d / 1e9:.2f}" for d in rw.seek_back_dist) or "-")
              + "; forward "
              + (", ".join(f"{d / 1e9:.2f}" for d in rw.seek_fwd_dist) or "-")
              + " e9 steps)")
    if rw.info:
        print(f"(after the sweep, `monitor info`: "
              f"{rw.info.splitlines()[-1].strip()})")
    for note in rw.notes:
        print(f"({note})")
    if rw.record_wall is not None and rw.plain is not None:
        print(f"(the recording took {rw.record_wall:.1f} s wall, "
              f"{rw.record_cpu:.1f} s CPU; the plain replay "
              f"{rw.plain.wall:.1f} s wall, {rw.plain.cpu:.1f} s CPU)")
    print()

    if qs:
        print("Side by side, medians of wall time (QEMU's positions are its "
              "instruction count, and it went forward only to the last "
              "phase's hit; QEMU keeps no checkpoints: a reverse operation "
              "loads the snapshot taken at the start and replays from "
              "there):")
        heads = ["", "Rewind"] + [q.name for q in qs]

        def qcell(q: Results, value: str) -> str:
            return "n/a" if q.error else value

        def rev(q: Results, value: str) -> str:
            return "n/a" if q.error or (q.reverse_error and value == "n/a") \
                else value

        rows = [
            ["record the workload (whole process), s",
             fmt(rw.record_wall)] + [qcell(q, fmt(q.record_wall)) for q in qs],
            ["forward under gdb, breakpoint set, Msteps/s",
             fmt(mrate(rw.sweep_steps, rw.sweep, "wall"))]
            + [qcell(q, fmt(mrate(q.sweep_steps, q.sweep, "wall")))
               for q in qs],
            [f"{args.span / 1e9:g}e9 steps forward (seek), s",
             fmt(wall_med(rw.forward_span), 2)]
            + [qcell(q, fmt(wall_med(q.forward_span), 2)) for q in qs],
            ["reverse-stepi, first after a seek, ms",
             ms(wall_med(rw.bs_after_seek))]
            + [rev(q, ms(wall_med(q.bs_after_seek))) for q in qs],
            ["reverse-stepi, repeated, ms", ms(wall_med(rw.bs_repeat))]
            + [rev(q, ms(wall_med(q.bs_repeat))) for q in qs],
            [f"reverse-continue, hit {args.span / 1e9:g}e9 back, s",
             fmt(wall_med(rw.bc), 2)]
            + [rev(q, fmt(wall_med(q.bc), 2)) for q in qs],
            ["  / the same span forward",
             fmt(med(ratio_fwd), 2)]
            + [rev(q, fmt(div(wall_med(q.bc), wall_med(q.forward_span)), 2))
               for q in qs],
            ["seek backward, ms", ms(wall_med(rw.seek_back))]
            + [rev(q, ms(wall_med(q.seek_back))) for q in qs],
        ]
        print(table(heads, rows))
        for q in qs:
            if q.error:
                print(f"* {q.name} n/a: {q.error}")
            elif q.reverse_error:
                print(f"* {q.name}: {q.reverse_error}.")
            for note in q.notes:
                print(f"* {q.name}: {note}")
        print()
    print(verdict(args, rw, bs_all, ratio_fwd, ratio_plain, seek_limit))


def verdict(args: argparse.Namespace, rw: Results, bs_all: list[Sample],
            ratio_fwd: list[float], ratio_plain: list[float],
            seek_limit: float | None) -> str:
    """One line per target of issue 12, with what was measured."""
    if rw.error or rw.plain is None:
        return "Targets of issue 12: no Rewind numbers (see the n/a note)."
    lines = ["Targets of issue 12 (wall time):"]
    if rw.end is not None:
        lines.append(f"- a Linux recording of at least 5e9 instructions: "
                     f"{rw.end / 1e9:.2f}e9 steps -- "
                     + ("yes" if rw.end >= TARGET_RECORDING_STEPS else "no"))

    def met(ok: bool) -> str:
        return "met" if ok else "not met"

    if bs_all:
        kinds = [("after a seek", rw.bs_after_seek),
                 ("after a breakpoint stop", rw.bs_after_stop),
                 ("repeated", rw.bs_repeat)]
        slow = [k for k, xs in kinds
                if xs and wall_med(xs) * 1000 > TARGET_BS_MS]
        lines.append(
            f"- reverse-stepi anywhere <= {TARGET_BS_MS:.0f} ms median: "
            + ", ".join(f"{k} {ms(wall_med(xs))} ms ({len(xs)})"
                        for k, xs in kinds if xs)
            + f"; all {len(bs_all)}: {ms(wall_med(bs_all))} ms -- "
            + ("met" if not slow else
               "not met " + " and ".join(slow)
               + (" (the first reverse-stepi after a stop replays from the "
                  "last checkpoint taken going forward, up to one interval "
                  "back)" if "after a breakpoint stop" in slow else "")))
    if ratio_plain:
        # The verdict uses the span at plain replay's speed: a seek forward
        # in the session may start from a checkpoint near its target, and
        # then replays less than the span.
        r = med(ratio_plain)
        lines.append(
            f"- reverse-continue to a hit {args.span / 1e9:g}e9 back <= "
            f"{TARGET_BC_RATIO}x replaying that span forward: {r:.2f}x the "
            f"span at plain replay's speed ({med(ratio_fwd) or 0:.2f}x the "
            f"session's own seek over it) -- {met(r <= TARGET_BC_RATIO)}")
    if seek_limit is not None and (rw.seek_back or rw.seek_fwd):
        worst_back = max((s.wall for s in rw.seek_back), default=0.0)
        worst_fwd = max((s.wall for s in rw.seek_fwd), default=0.0)
        lines.append(
            f"- seek anywhere <= one checkpoint interval of replay plus a "
            f"restore ({seek_limit * 1000:.0f} ms): slowest backward "
            f"{worst_back * 1000:.0f} ms, slowest forward "
            f"{worst_fwd * 1000:.0f} ms -- "
            + met(max(worst_back, worst_fwd) <= seek_limit)
            + ("" if max(worst_back, worst_fwd) <= seek_limit else
               " (a seek restores the latest checkpoint at or before its "
               "target and replays from there, under gdb a little slower "
               "than a plain replay; a busy host slows it more)"))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
