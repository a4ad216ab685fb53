#!/usr/bin/env python3
"""Snapshots and restores on Rewind and on QEMU, side by side (issue 6).

Boots Debian's riscv64 kernel with Rewind's default initramfs (the guest
`rewind run` fetches and caches) on both emulators with 1 GiB of RAM, the
same kernel, initramfs, OpenSBI and one hart, and runs a workload
(/snapshot_workload.sh, in a small cpio archive appended to the initramfs)
that leaves files in /tmp (the initramfs, so guest RAM): sorted numbers, a
gzip of them and, with --random-mib N, N MiB from /dev/urandom (none by
default: the guest of issue 6's targets is a booted one; random data, which
nothing compresses, is the hard case). It then prints `snapshot: ready` and
sleeps, idle, for ever. At that point:

  Rewind  first, one run with `--snapshot-every N --snapshot-dir D` and
          `--control S`: once the guest is ready, its instruction count
          (ICOUNT) is asked for; the series' snapshots up to ICOUNT give the
          incremental times and sizes (every file after the first). Runs are
          deterministic, so every later run reaches the same state at
          ICOUNT. Then, --reps times:
          a full snapshot (`--snapshot-at ICOUNT --snapshot-out F`: the
          time and size from its stderr line `rewind: full snapshot F
          written (N bytes, T ms)`), and a second one from outside: the
          machine paused through `--control`, the wall time from sending
          {"cmd": "snapshot", ...} to its answer (the second snapshot of a
          process is faster than the first, which is the one that counts);
          restore: `rewind restore F --control S`, the wall time from
          starting the process to the answer to {"cmd": "status"}, beside
          the same for `rewind run --control S` booting the machine afresh
          (process start-up, reading and hashing the boot files, building a
          1 GiB machine), and the same for the last incremental snapshot up
          to ICOUNT (which restores the whole chain);
  QEMU    --reps times: migrate "exec:cat > F" over QMP once the guest is
          ready (after --settle seconds): the wall time from the command to
          `query-migrate` saying completed, QEMU's own total-time and
          downtime, and the file's size; restore: the same command line with
          -incoming "exec:cat F", the wall time from starting the process to
          `query-status` saying running, beside the same command line
          without -incoming (start-up to the first answer).

Python 3 standard library only. See benches/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (GUEST_SUBDIR, add_common_options, first_line, host_cpu,
                      log, qemu_missing, rewind_binary, run_in_build_dir,
                      table)
from linux_boot import (BenchError, Guest, HostCpu,
                        build_initrd, cache_dir, find_guest, rewind_revision)

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent

GUEST_SCRIPT = "snapshot_workload.sh"
CMDLINE = f"console=ttyS0 rewind.modules=no rewind.run=/{GUEST_SCRIPT}"
READY = "snapshot: ready"
GUEST_SCRIPT_TEXT = r"""#!/bin/sh
# Written by benches/snapshot.py; /init runs it (rewind.run=/snapshot_workload.sh).
# Leaves files in /tmp (guest RAM), then idles until the machine is stopped.
cd /tmp || exit 1
seq 1 @LINES@ > nums
sort -r nums > sorted
gzip -c < sorted > sorted.gz
dd if=/dev/urandom of=random bs=1M count=@MIB@ 2> /dev/null
echo "snapshot: sorted.gz $(wc -c < sorted.gz) $(sha256sum < sorted.gz | cut -c1-16)"
echo "snapshot: ready"
while :; do sleep 3600; done
"""
DEFAULT_LINES = 50_000
DEFAULT_RANDOM_MIB = 0
# Instructions between the snapshots of the series (0.2 s of guest time).
DEFAULT_EVERY = 200_000_000

SNAP_LINE_RE = re.compile(
    r"rewind: (full|incremental) snapshot (.+?) written \((\d+) bytes, "
    r"([\d.]+) ms\)")
SERIES_NAME_RE = re.compile(r"snap-(\d+)-(\d+)\.rws$")


# --------------------------------------------------------------------------
# Processes, sockets, consoles


class Emu:
    """One emulator process, started in a session of its own so that it and
    only it can be ended; stdout and stdin /dev/null, stderr to a file."""

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

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def check_alive(self, what: str) -> None:
        if self.proc.poll() is not None:
            last = self.stderr().strip().splitlines()
            raise BenchError(f"{what}: the process exited with status "
                             f"{self.proc.returncode}"
                             + (f" ({last[-1].strip()})" if last else ""))

    def finish(self, timeout: float) -> int:
        """Waits for the exit (after a quit); kills it after `timeout`."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.err_f.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.err_f.close()


def connect(path: Path, emu: Emu, deadline: float, what: str) -> socket.socket:
    """Connects to the unix socket the emulator listens on, trying every
    half millisecond until it exists."""
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
        emu.check_alive(what)
        if time.perf_counter() > deadline:
            raise BenchError(f"{what}: no socket {path} after the timeout")
        time.sleep(0.0005)


class JsonLines:
    """One JSON object per line each way (Rewind's control socket, QMP)."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        sock.settimeout(timeout)
        self.sock = sock
        self.f = sock.makefile("rw", encoding="utf-8")

    def send(self, obj: dict) -> None:
        self.f.write(json.dumps(obj) + "\n")
        self.f.flush()

    def recv(self) -> dict:
        line = self.f.readline()
        if not line:
            raise BenchError("the emulator closed its socket")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass


class Control(JsonLines):
    """Rewind's --control socket."""

    def ask(self, obj: dict) -> dict:
        self.send(obj)
        answer = self.recv()
        if not answer.get("ok"):
            raise BenchError(f"rewind's control socket answered {obj} with "
                             f"{answer}")
        return answer


class Qmp(JsonLines):
    """QEMU's QMP socket, past the greeting and capabilities negotiation."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        super().__init__(sock, timeout)
        self.recv()                         # the greeting
        self.execute("qmp_capabilities")

    def execute(self, name: str, **arguments: object) -> object:
        msg: dict = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self.send(msg)
        while True:
            m = self.recv()
            if "return" in m:
                return m["return"]
            if "error" in m:
                raise BenchError(f"QMP {name}: {m['error'].get('desc', m)}")
            # else an asynchronous event: skip it


def wait_for_text(path: Path, text: str, emu: Emu, deadline: float,
                  what: str, poll: float = 0.01) -> float:
    """Waits until `text` is in the file `path`; returns when it was seen."""
    while True:
        try:
            if text in path.read_text(encoding="utf-8", errors="replace"):
                return time.perf_counter()
        except OSError:
            pass
        emu.check_alive(what)
        if time.perf_counter() > deadline:
            raise BenchError(f"{what}: no `{text}` within the timeout")
        time.sleep(poll)


def fresh(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# The command lines


def rewind_boot(rewind: str, guest: Guest, initrd: Path, mem: str,
                console: Path, control: Path) -> list[str]:
    return [rewind, "run", "--kernel", str(guest.kernel),
            "--initrd", str(initrd), "--firmware", str(guest.firmware),
            "--mem", mem, "--smp", "1", "--append", CMDLINE,
            "--serial", f"file:{console}", "--control", str(control)]


def qemu_boot(qemu: str, guest: Guest, initrd: Path, mem: str,
              console: Path, qmp: Path) -> list[str]:
    # -net none: no NIC on either side (QEMU's virt otherwise creates a
    # user-mode network backend); QEMU's default TCG settings otherwise.
    return [qemu, "-M", "virt", "-m", mem, "-smp", "1",
            "-bios", str(guest.firmware), "-kernel", str(guest.kernel),
            "-initrd", str(initrd), "-append", CMDLINE, "-net", "none",
            "-no-reboot", "-display", "none", "-monitor", "none",
            "-serial", f"file:{console}",
            "-qmp", f"unix:{qmp},server=on,wait=off"]


# --------------------------------------------------------------------------
# Measurements


@dataclass
class Results:
    """Each list holds one value per timed run."""
    snap_ms: list[float] = field(default_factory=list)       # own timer
    snap_ext_ms: list[float] = field(default_factory=list)   # from outside
    snap2_ms: list[float] = field(default_factory=list)      # Rewind: 2nd
    snap_bytes: list[int] = field(default_factory=list)
    downtime_ms: list[float] = field(default_factory=list)   # QEMU only
    incr_ms: list[float] = field(default_factory=list)       # every file
    incr_bytes: list[int] = field(default_factory=list)
    series_full: list[tuple[int, float]] = field(default_factory=list)
    restore_ms: list[float] = field(default_factory=list)
    baseline_ms: list[float] = field(default_factory=list)
    chain_ms: list[float] = field(default_factory=list)      # Rewind only
    chain_len: int = 0
    error: str = ""


def parse_snapshot_lines(stderr: str) -> list[tuple[str, Path, int, float]]:
    """Rewind's `rewind: full|incremental snapshot F written (N bytes, T
    ms)` lines: (kind, file, bytes, ms)."""
    return [(kind, Path(path), int(nbytes), float(ms))
            for kind, path, nbytes, ms in SNAP_LINE_RE.findall(stderr)]


def rewind_series_run(rewind: str, guest: Guest, initrd: Path,
                      args: argparse.Namespace, work: Path,
                      res: Results) -> tuple[int, Path | None]:
    """The first run: boots with `--snapshot-every N --snapshot-dir D` to
    `snapshot: ready`, asks the machine for its instruction count then (the
    guest is idle in its sleep loop: this is ICOUNT for the timed runs) and
    quits. Keeps the series' snapshots up to ICOUNT; returns ICOUNT and the
    last incremental snapshot up to it."""
    console, ctl = work / "rewind-series.txt", work / "rewind-series.sock"
    series = work / "series"
    shutil.rmtree(series, ignore_errors=True)
    fresh(console, ctl)
    cmd = rewind_boot(rewind, guest, initrd, args.mem, console, ctl) + [
        "--snapshot-every", str(args.every), "--snapshot-dir", str(series)]
    emu = Emu(cmd, work / "rewind-series.stderr")
    try:
        deadline = emu.start + args.timeout
        wait_for_text(console, READY, emu, deadline, "rewind series run")
        c = Control(connect(ctl, emu, deadline, "rewind series run"),
                    args.timeout)
        icount = int(c.ask({"cmd": "status"})["icount"])
        c.ask({"cmd": "quit"})
        c.close()
        rc = emu.finish(args.timeout)
        if rc != 0:
            raise BenchError(f"rewind series run: exit status {rc} after quit")
    finally:
        emu.kill()
    last = None
    for kind, path, nbytes, ms in parse_snapshot_lines(emu.stderr()):
        m = SERIES_NAME_RE.search(path.name)
        if m is None or int(m[2]) > icount:
            continue            # not of the series, or after ICOUNT
        if kind == "full":
            res.series_full.append((nbytes, ms))
        else:
            res.incr_ms.append(ms)
            res.incr_bytes.append(nbytes)
            last = path
            res.chain_len = int(m[1])
    if not res.series_full:
        raise BenchError("rewind series run: no `full snapshot` line for the "
                         "series")
    return icount, last


def rewind_snapshot_run(rewind: str, guest: Guest, initrd: Path,
                        args: argparse.Namespace, work: Path, icount: int,
                        res: Results) -> Path:
    """One timed run: boots, takes the full snapshot at `icount`
    (--snapshot-at), then one more from outside while paused, and quits.
    Returns the --snapshot-at snapshot."""
    console, ctl = work / "rewind-snap.txt", work / "rewind-snap.sock"
    full, second = work / "full.rws", work / "full-control.rws"
    fresh(console, ctl, full, second)
    cmd = rewind_boot(rewind, guest, initrd, args.mem, console, ctl) + [
        "--snapshot-at", str(icount), "--snapshot-out", str(full)]
    emu = Emu(cmd, work / "rewind-snap.stderr")
    try:
        deadline = emu.start + args.timeout
        wait_for_text(emu.stderr_path, f"full snapshot {full} written", emu,
                      deadline, "rewind snapshot run")
        c = Control(connect(ctl, emu, deadline, "rewind snapshot run"),
                    args.timeout)
        c.ask({"cmd": "pause"})
        t = time.perf_counter()
        answer = c.ask({"cmd": "snapshot", "path": str(second)})
        res.snap_ext_ms.append((time.perf_counter() - t) * 1e3)
        res.snap2_ms.append(float(answer["ms"]))
        c.ask({"cmd": "quit"})
        c.close()
        rc = emu.finish(args.timeout)
        if rc != 0:
            raise BenchError(f"rewind snapshot run: exit status {rc} after "
                             "quit")
    finally:
        emu.kill()
    lines = [x for x in parse_snapshot_lines(emu.stderr()) if x[1] == full]
    if len(lines) != 1 or not full.is_file():
        raise BenchError("rewind printed no line for the --snapshot-at "
                         "snapshot, or did not write it")
    _, _, nbytes, ms = lines[0]
    if full.stat().st_size != nbytes:
        raise BenchError(f"{full} has {full.stat().st_size} bytes, rewind "
                         f"said {nbytes}")
    res.snap_ms.append(ms)
    res.snap_bytes.append(nbytes)
    return full


def time_to_status(cmd: list[str], ctl: Path, args: argparse.Namespace,
                   stderr: Path, what: str,
                   min_icount: int = 0) -> float:
    """Starts `cmd` (which has --control ctl) and returns the milliseconds
    from the start of the process to the answer to its first status
    request; then quits it."""
    fresh(ctl)
    emu = Emu(cmd, stderr)
    try:
        deadline = emu.start + args.timeout
        c = Control(connect(ctl, emu, deadline, what), args.timeout)
        status = c.ask({"cmd": "status"})
        ms = (time.perf_counter() - emu.start) * 1e3
        if status.get("state") != "running" or \
                int(status.get("icount", -1)) < min_icount:
            raise BenchError(f"{what}: unexpected status {status}")
        c.ask({"cmd": "quit"})
        c.close()
        emu.finish(args.timeout)
        return ms
    finally:
        emu.kill()


def qemu_snapshot_run(cmd: list[str], console: Path, qmp_path: Path,
                      mig: Path, args: argparse.Namespace, work: Path,
                      res: Results) -> None:
    """Boots QEMU to `snapshot: ready`, migrates it to a file, quits."""
    fresh(console, qmp_path, mig)
    console.touch()
    emu = Emu(cmd, work / "qemu-snap.stderr")
    try:
        deadline = emu.start + args.timeout
        q = Qmp(connect(qmp_path, emu, deadline, "QEMU boot"), args.timeout)
        wait_for_text(console, READY, emu, deadline, "QEMU boot")
        time.sleep(args.settle)
        # QEMU 7.2 limits migration to 32 MiB/s unless told otherwise;
        # writing to a local file, that limit is not what is measured.
        q.execute("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
        t = time.perf_counter()
        q.execute("migrate", uri=f"exec:cat > {mig}")
        while True:
            info = q.execute("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                break
            if time.perf_counter() > deadline:
                raise BenchError("QEMU's migration did not complete")
            time.sleep(0.001)
        wall_ms = (time.perf_counter() - t) * 1e3
        if info["status"] != "completed":
            raise BenchError(f"QEMU's migration {info['status']}: "
                             f"{info.get('error-desc', '')}")
        q.execute("quit")
        q.close()
        emu.finish(args.timeout)
    finally:
        emu.kill()
    res.snap_ext_ms.append(wall_ms)
    res.snap_ms.append(float(info.get("total-time", wall_ms)))
    res.downtime_ms.append(float(info.get("downtime", 0)))
    res.snap_bytes.append(mig.stat().st_size)


def qemu_time_to_status(cmd: list[str], qmp_path: Path,
                        args: argparse.Namespace, stderr: Path,
                        want_running: bool) -> float:
    """Milliseconds from starting QEMU to query-status saying running (with
    want_running) or to its first answer; then quits it."""
    fresh(qmp_path)
    emu = Emu(cmd, stderr)
    try:
        deadline = emu.start + args.timeout
        q = Qmp(connect(qmp_path, emu, deadline, "QEMU restore"),
                args.timeout)
        while True:
            st = q.execute("query-status")
            if not want_running or st.get("status") == "running":
                break
            if st.get("status") not in ("inmigrate", "paused", "prelaunch",
                                        "restore-vm"):
                raise BenchError(f"QEMU restore: status {st}")
            if time.perf_counter() > deadline:
                raise BenchError("QEMU restore: not running within the "
                                 "timeout")
            time.sleep(0.0005)
        ms = (time.perf_counter() - emu.start) * 1e3
        q.execute("quit")
        q.close()
        emu.finish(args.timeout)
        return ms
    finally:
        emu.kill()


# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Snapshot and restore times and sizes of a booted 1 GiB "
                    "Linux guest on Rewind and QEMU, side by side.")
    ap.add_argument("--reps", type=int, default=3,
                    help="timed runs per emulator (default 3)")
    ap.add_argument("--restores", type=int, default=5,
                    help="restores (and fresh start-ups) timed per timed run "
                         "(default 5): each takes a fraction of a second, "
                         "and on a noisy host one sample says little")
    ap.add_argument("--mem", default="1G", help="guest RAM (default 1G)")
    ap.add_argument("--every", type=int, default=DEFAULT_EVERY,
                    help="instructions between Rewind's series snapshots "
                         f"(default {DEFAULT_EVERY})")
    ap.add_argument("--random-mib", type=int, default=DEFAULT_RANDOM_MIB,
                    help="MiB of /dev/urandom the guest keeps in /tmp "
                         f"(default {DEFAULT_RANDOM_MIB})")
    ap.add_argument("--settle", type=float, default=0.2,
                    help="seconds QEMU idles after `snapshot: ready` before "
                         "the migration (default 0.2)")
    add_common_options(ap, keeps="the initramfs, snapshots and consoles",
                       timeout_for="a boot", verbose="print every run's numbers",
                       build_dir_note="; snapshots need about 0.3 GB")
    args = ap.parse_args()

    if args.reps < 1:
        ap.error("--reps must be at least 1")
    if args.restores < 1:
        ap.error("--restores must be at least 1")
    if args.every < 1:
        ap.error("--every must be at least 1")
    if args.random_mib < 0:
        ap.error("--random-mib must not be negative")
    if not 0 <= args.settle <= 60:
        ap.error("--settle must be between 0 and 60 seconds")
    if not re.fullmatch(r"\d+[KMG]?", args.mem):
        ap.error("--mem takes a size such as 512M or 1G")
    if qemu_missing(args.qemu):
        return 2
    if shutil.which("cat") is None:
        print("error: cat not found (QEMU's exec: migration needs it)",
              file=sys.stderr)
        return 2

    return run_in_build_dir(args.build_dir, "snapshot.",
                            lambda work: bench(args, work), [(BenchError, 1)])


def bench(args: argparse.Namespace, work: Path) -> int:
    start_load = os.getloadavg()
    rewind_path, rewind_reason = rewind_binary(args.no_build, args.rewind)
    rewind = str(rewind_path) if rewind_path else None

    gdir = args.guest_dir or cache_dir() / GUEST_SUBDIR
    guest = find_guest(gdir, rewind_path, args.timeout)
    script = work / GUEST_SCRIPT
    script.write_text(GUEST_SCRIPT_TEXT
                      .replace("@LINES@", str(DEFAULT_LINES))
                      .replace("@MIB@", str(args.random_mib)),
                      encoding="utf-8")
    initrd = work / "initramfs-snapshot.cpio"
    build_initrd(guest.initrd, {GUEST_SCRIPT: script}, initrd)

    rw, qm = Results(), Results()
    if rewind is None:
        rw.error = rewind_reason
    q_console, q_qmp = work / "qemu.txt", work / "qemu.qmp"
    mig = work / "qemu.mig"
    q_cmd = qemu_boot(args.qemu, guest, initrd, args.mem, q_console, q_qmp)

    host = HostCpu()
    t0 = os.times()
    busy0 = host.busy_seconds()
    wall0 = time.perf_counter()
    loads = [os.getloadavg()[0]]

    icount, last = 0, None
    if rewind is not None:
        log(f"Rewind: boot to `{READY}` with --snapshot-every {args.every}, "
            "to find the instruction count there ...")
        try:
            icount, last = rewind_series_run(rewind, guest, initrd, args,
                                             work, rw)
            log(f"Rewind: the guest is ready and idle at {icount} "
                f"instructions; {len(rw.incr_ms)} incremental snapshots "
                "before")
        except BenchError as e:
            rw.error = f"series run: {e}"
            log(f"rewind: n/a: {rw.error}")

    for rep in range(1, args.reps + 1):
        log(f"QEMU: run {rep} of {args.reps}: boot, migrate to a file, "
            "restore ...")
        n = len(qm.snap_ms)
        qemu_snapshot_run(q_cmd, q_console, q_qmp, mig, args, work, qm)
        r = len(qm.restore_ms)
        for _ in range(args.restores):
            qm.restore_ms.append(qemu_time_to_status(
                q_cmd + ["-incoming", f"exec:cat {mig}"], q_qmp, args,
                work / "qemu-restore.stderr", want_running=True))
            qm.baseline_ms.append(qemu_time_to_status(
                q_cmd, q_qmp, args, work / "qemu-start.stderr",
                want_running=False))
        if args.verbose:
            log(f"QEMU run {rep}: migrate {qm.snap_ext_ms[n]:.1f} ms "
                f"(total-time {qm.snap_ms[n]:.0f}, downtime "
                f"{qm.downtime_ms[n]:.0f}), {qm.snap_bytes[n]} bytes; "
                f"restore {med(qm.restore_ms[r:]):.1f} ms; start-up "
                f"{med(qm.baseline_ms[r:]):.1f} ms (medians of "
                f"{args.restores})")
        if rw.error:
            continue
        log(f"Rewind: run {rep} of {args.reps}: boot, snapshot at "
            f"{icount}, restore ...")
        try:
            n = len(rw.snap_ms)
            full = rewind_snapshot_run(rewind, guest, initrd, args, work,
                                       icount, rw)
            ctl = work / "rewind-restore.sock"
            r = len(rw.restore_ms)
            for _ in range(args.restores):
                rw.restore_ms.append(time_to_status(
                    [rewind, "restore", str(full), "--serial",
                     f"file:{work / 'rewind-restore.txt'}", "--control",
                     str(ctl)],
                    ctl, args, work / "rewind-restore.stderr",
                    "rewind restore", min_icount=icount))
                rw.baseline_ms.append(time_to_status(
                    rewind_boot(rewind, guest, initrd, args.mem,
                                work / "rewind-start.txt", ctl),
                    ctl, args, work / "rewind-start.stderr", "rewind run"))
            if last is not None:
                rw.chain_ms.append(time_to_status(
                    [rewind, "restore", str(last), "--serial",
                     f"file:{work / 'rewind-restore.txt'}", "--control",
                     str(ctl)],
                    ctl, args, work / "rewind-restore.stderr",
                    "rewind restore (incremental)"))
            if args.verbose:
                log(f"Rewind run {rep}: full snapshot {rw.snap_ms[n]:.1f} ms "
                    f"(a second one: {rw.snap2_ms[n]:.1f} ms, from outside "
                    f"{rw.snap_ext_ms[n]:.1f} ms), "
                    f"{rw.snap_bytes[n]} bytes; restore "
                    f"{med(rw.restore_ms[r:]):.1f} ms; start-up "
                    f"{med(rw.baseline_ms[r:]):.1f} ms (medians of "
                    f"{args.restores})")
        except BenchError as e:
            rw.error = f"run {rep}: {e}"
            log(f"rewind: n/a: {rw.error}")
        loads.append(os.getloadavg()[0])

    busy1 = host.busy_seconds()
    t1 = os.times()
    ours = sum(t1[:4]) - sum(t0[:4])
    wall = time.perf_counter() - wall0
    others = None
    if busy0 is not None and busy1 is not None and wall > 0:
        others = max(0.0, (busy1 - busy0 - ours) / wall)
    report(args, guest, qm, rw, icount, rewind_reason, start_load, loads,
           others, wall)
    return 1 if rw.error and not rewind_reason else 0


# --------------------------------------------------------------------------
# The report


def med(xs: list) -> float | None:
    return statistics.median(xs) if xs else None


def fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def mb(x: float | None) -> float | None:
    return None if x is None else x / 1e6


def report(args: argparse.Namespace, guest: Guest, qm: Results, rw: Results,
           icount: int, rewind_reason: str,
           start_load: tuple[float, float, float], loads: list[float],
           others: float | None, wall: float) -> None:
    ncpu = os.cpu_count() or 1
    qemu_version = first_line([args.qemu, "--version"])
    print(f"host CPU:  {host_cpu()}")
    print(f"host OS:   {platform.system()} {platform.release()}")
    print(f"QEMU:      {qemu_version}")
    print(f"rewind:    {args.rewind} ({rewind_revision()})"
          + (f" -- n/a: {rewind_reason}" if rewind_reason else ""))
    print(f"guest:     Linux {guest.version}; {args.mem} RAM, 1 hart; "
          f"/{GUEST_SCRIPT} ({args.random_mib} MiB of random data in /tmp), "
          f"snapshot when idle after it (Rewind: at {icount} instructions)")
    print(f"runs:      {args.reps} timed runs per emulator ({args.restores} "
          f"restores each), after one run of Rewind with --snapshot-every; "
          f"{wall / 60:.1f} minutes in all")
    print(f"host load: load average {start_load[0]:.2f} {start_load[1]:.2f} "
          f"{start_load[2]:.2f} at the start; 1-minute {min(loads):.2f} to "
          f"{max(loads):.2f} during the runs")
    if others is not None:
        print(f"           other processes kept {others:.2f} of {ncpu} CPUs "
              "busy on average during the runs")
    if start_load[0] > max(1.0, 0.25 * ncpu) or \
            (others is not None and others > 0.25):
        print("WARNING:   the host was busy with other work; times are "
              "inflated and noisy")
    print()

    def row(label: str, q: float | None, r: float | None,
            digits: int = 1) -> list[str]:
        return [label, fmt(q, digits), fmt(r, digits), fmt(div(r, q), 2)]

    net_q = [a - b for a, b in zip(qm.restore_ms, qm.baseline_ms)]
    net_r = [a - b for a, b in zip(rw.restore_ms, rw.baseline_ms)]
    rows = [
        row("full snapshot, ms (Rewind: --snapshot-at, its stderr line; "
            "QEMU: migrate to completed)", med(qm.snap_ext_ms),
            med(rw.snap_ms)),
        ["  a second full snapshot, ms (Rewind: paused, control-socket "
         "request to answer)", "-", fmt(med(rw.snap_ext_ms)), "-"],
        row("  guest stopped, ms (QEMU: its downtime; Rewind: the whole "
            "snapshot)", med(qm.downtime_ms), med(rw.snap_ms)),
        row("full snapshot, MB", mb(med(qm.snap_bytes)),
            mb(med(rw.snap_bytes))),
        ["incremental snapshot, ms (median)", "-", fmt(med(rw.incr_ms)), "-"],
        ["incremental snapshot, MB (median)", "-",
         fmt(mb(med(rw.incr_bytes)), 2), "-"],
        row("restore: process start to running, ms", med(qm.restore_ms),
            med(rw.restore_ms)),
        row("  start-up of a fresh machine, ms", med(qm.baseline_ms),
            med(rw.baseline_ms)),
        row("  restore net of that, ms", med(net_q), med(net_r)),
    ]
    if rw.chain_ms:
        rows.append(["restore the last incremental (a chain of "
                     f"{rw.chain_len} files), ms", "-",
                     fmt(med(rw.chain_ms)), "-"])
    print("Medians over the timed runs (MB = 10^6 bytes):")
    print(table(["", "QEMU", "Rewind", "Rewind/QEMU"], rows))
    notes = []
    if qm.snap_ms:
        notes.append(f"QEMU's own migration total-time {med(qm.snap_ms):.0f} "
                     f"ms, downtime {med(qm.downtime_ms):.0f} ms (medians)")
    if rw.snap2_ms:
        notes.append("Rewind's second snapshot by its own timer: "
                     f"{med(rw.snap2_ms):.1f} ms")
    if rw.incr_ms:
        notes.append(
            f"incremental: {len(rw.incr_ms)} snapshots in one run, one every "
            f"{args.every} instructions from power-on to ICOUNT, "
            f"{min(rw.incr_ms):.1f} to {max(rw.incr_ms):.1f} ms and "
            f"{min(rw.incr_bytes) / 1e6:.2f} to "
            f"{max(rw.incr_bytes) / 1e6:.2f} MB; the series' first, full, "
            f"snapshot {mb(rw.series_full[0][0]):.1f} MB in "
            f"{rw.series_full[0][1]:.1f} ms")
    for n in notes:
        print(f"({n})")
    for name, r in (("QEMU", qm), ("Rewind", rw)):
        if r.error:
            print(f"* {name} n/a: {r.error}")
    print()
    print(verdict(qm, rw, net_r))

    if args.json:
        data = {
            "host_cpu": host_cpu(), "qemu_version": qemu_version,
            "rewind_revision": rewind_revision(),
            "kernel_version": guest.version, "mem": args.mem,
            "reps": args.reps, "every": args.every,
            "random_mib": args.random_mib, "rewind_icount": icount,
            "load_average_start": list(start_load),
            "load_average_during": loads, "other_processes_cpus": others,
            "qemu": vars(qm), "rewind": vars(rw),
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n",
                             encoding="utf-8")


def verdict(qm: Results, rw: Results, net_r: list[float]) -> str:
    if rw.error or not rw.snap_ms:
        return "Goals of issue 6: no Rewind numbers (see the n/a note)."
    snap, size = med(rw.snap_ms), div(med(rw.snap_bytes), med(qm.snap_bytes))
    incr, restore = med(rw.incr_ms), med(rw.restore_ms)
    lines = ["Goals of issue 6:",
             f"- full snapshot of the booted 1 GiB guest well under 100 ms: "
             f"{snap:.1f} ms -- {'met' if snap < 100 else 'not met'}"]
    if size is not None:
        lines.append(f"- under a third of QEMU's size: Rewind/QEMU = "
                     f"{size:.2f} -- {'met' if size < 1 / 3 else 'not met'}")
    if incr is not None:
        lines.append(f"- incremental in a few ms: median {incr:.1f} ms -- "
                     + ("met" if incr <= 5 else "not met"))
    if restore is not None:
        lines.append(f"- restore under 100 ms: {restore:.1f} ms from process "
                     f"start ({med(net_r):.1f} ms net of a fresh start-up) -- "
                     + ("met" if restore < 100 else "not met"))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
