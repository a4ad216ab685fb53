#!/usr/bin/env python3
"""Record and replay on Rewind and on QEMU, side by side (issue 5).

Boots Debian's riscv64 kernel with Rewind's default initramfs (the guest
`rewind run` fetches and caches) on both emulators with the same kernel,
initramfs, OpenSBI, memory and one hart, runs a non-interactive workload
(/rr_workload.sh, in a small cpio archive appended to the initramfs: busybox
seq, sort, gzip, gunzip, tr and sha256sum over files in /tmp, a few guest
seconds), and powers off. Each emulator runs it three ways:

  Rewind  rewind run    ... --serial file:CONSOLE
          rewind record -o F ... (the same options)
          rewind replay F --serial file:CONSOLE --report R
  QEMU    qemu-system-riscv64 ... -icount shift=auto
          qemu-system-riscv64 ... -icount shift=auto,rr=record,rrfile=F
          qemu-system-riscv64 ... -icount shift=auto,rr=replay,rrfile=F

and the script reports medians over --reps of the wall and CPU time of each
whole process, the record overhead (record / run), the replay speed
(replay / record), and the size of the recording in bytes and in bytes per
guest second (the guest's own /proc/uptime at the end of the workload),
with the ratio Rewind / QEMU of the log sizes.

It also checks what it measures: every Rewind replay must end with `state
hash ... matches the recording`, the replayed console must equal the
recorded one byte for byte (on both emulators), Rewind's `run` and `record`
must print the same console and end in the same state hash, and what the
workload prints (checksums) must be the same on both emulators. A Rewind
replay that does not match stops the script with exit status 1.

Python 3 standard library only. See benches/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import signal
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
                        build_initrd, cache_dir, find_guest, program_output,
                        rewind_revision)

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent

GUEST_SCRIPT = "rr_workload.sh"
# No virtio device on either side, so no modules (see linux_boot.py).
CMDLINE = f"console=ttyS0 rewind.modules=no rewind.run=/{GUEST_SCRIPT}"
# What Rewind's guest RTC reads at boot unless told (src/run.rs,
# DEFAULT_RTC_EPOCH_NS): QEMU's RTC is given the same date.
RTC_EPOCH = "2026-01-01T00:00:00"
# A checkpoint interval larger than any run: a recording of inputs only.
NO_CHECKPOINTS = 10 ** 18

# The workload, a busybox shell script. Everything it prints but the last
# line is the same on every emulator and every run; the last line is the
# guest's uptime (seconds since the kernel started) at the end.
GUEST_SCRIPT_TEXT = r"""#!/bin/sh
# Written by benches/record_replay.py; /init runs it (rewind.run=/rr_workload.sh).
# CPU and memory work on files in /tmp (the initramfs), then the uptime.
cd /tmp || exit 1
seq 1 @LINES@ > nums
sort -r nums > sorted
gzip -c < sorted > sorted.gz
gunzip -c < sorted.gz > back
cmp -s sorted back || echo "rr: error: gunzip did not give back what gzip was given"
dd if=/dev/zero bs=1M count=@MIB@ 2> /dev/null | tr '\0' 'r' > big
for f in nums sorted sorted.gz big; do
    echo "rr: $f $(wc -c < $f) $(sha256sum < $f | cut -c1-16)"
done
rm -f nums sorted sorted.gz back big
echo "rr: uptime $(cut -d' ' -f1 /proc/uptime)"
"""
# At --scale 1 the script runs about 2.2 s of guest time on Rewind (one
# instruction per nanosecond) after a boot of 0.9 s.
LINES_PER_SCALE = 100_000
MIB_PER_SCALE = 4

UPTIME_RE = re.compile(r"^rr: uptime (\d+(?:\.\d+)?)\s*$", re.M)
INSPECT_LENGTH_RE = re.compile(
    r"^length\s+(\d+) instructions, ([\d.]+) s of guest time", re.M)
INSPECT_EVENT_RE = re.compile(r"^  (\S+)\s+(\d+)", re.M)
STATE_HASH_RE = re.compile(r"state hash ([0-9a-f]{64})")


# --------------------------------------------------------------------------
# Running one process


@dataclass
class Proc:
    seconds: float = 0.0        # wall time of the whole process
    cpu: float = 0.0            # user + system, all its threads
    console: str = ""
    stderr: str = ""
    error: str = ""


def run_proc(cmd: list[str], timeout: float, console: Path,
             stdout_is_console: bool = False) -> Proc:
    """Runs `cmd` to completion with stdin from /dev/null; the guest console
    is `console` (a -serial file: / --serial file:, or the process's stdout
    when `stdout_is_console`)."""
    console.unlink(missing_ok=True)
    err_path = console.with_suffix(".stderr")
    r = Proc()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out_f = open(console, "wb") if stdout_is_console else subprocess.DEVNULL
    try:
        with open(err_path, "wb") as err_f:
            start = time.perf_counter()
            try:
                # A session of its own, so that a timeout can end everything
                # the command started and nothing else.
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                        stdout=out_f, stderr=err_f,
                                        start_new_session=True)
            except OSError as e:
                r.error = f"cannot start {cmd[0]}: {e}"
                return r
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                r.error = f"did not exit within {timeout:g} s"
            r.seconds = time.perf_counter() - start
    finally:
        if stdout_is_console:
            out_f.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    r.cpu = ((after.ru_utime - before.ru_utime)
             + (after.ru_stime - before.ru_stime))
    r.stderr = err_path.read_text(encoding="utf-8", errors="replace")
    try:
        r.console = console.read_bytes().decode("utf-8", "replace")
    except OSError:
        r.console = ""
    if not r.error and proc.returncode != 0:
        last = r.stderr.strip().splitlines()
        r.error = f"exit status {proc.returncode}" + (
            f": {last[-1].strip()}" if last else "")
    return r


def workload_lines(console: str) -> tuple[str | None, list[str], float | None]:
    """(error, the workload's lines but the uptime, the uptime at the end)."""
    err, lines = program_output(console)
    if err:
        return err, [], None
    bad = [ln for ln in lines if ln.startswith("rr: error")]
    if bad:
        return bad[0], [], None
    m = UPTIME_RE.search(console)
    if m is None:
        return "the workload printed no `rr: uptime` line", [], None
    return None, [ln for ln in lines if not ln.startswith("rr: uptime")], \
        float(m[1])


# --------------------------------------------------------------------------
# The command lines


def rewind_boot_args(guest: Guest, initrd: Path, mem: str) -> list[str]:
    return ["--kernel", str(guest.kernel), "--initrd", str(initrd),
            "--firmware", str(guest.firmware), "--mem", mem, "--smp", "1",
            "--append", CMDLINE]


def qemu_cmd(qemu: str, guest: Guest, initrd: Path, mem: str,
             icount: str, console: Path) -> list[str]:
    # -net none: QEMU's virt otherwise creates a user-mode network backend,
    # and its docs ask for -net none when record/replay runs without
    # network. -rtc clock=vm: the RTC follows the virtual (instruction-
    # counted) clock, so its reads are not host-clock reads for the log to
    # keep; base= gives it Rewind's default date.
    return [qemu, "-M", "virt", "-m", mem, "-smp", "1",
            "-bios", str(guest.firmware), "-kernel", str(guest.kernel),
            "-initrd", str(initrd), "-append", CMDLINE,
            "-icount", icount, "-rtc", f"base={RTC_EPOCH},clock=vm",
            "-net", "none", "-no-reboot", "-display", "none",
            "-monitor", "none", "-serial", f"file:{console}"]


# --------------------------------------------------------------------------


MODES = ("run", "record", "replay")


@dataclass
class Series:
    """The timed runs of one emulator in one mode."""
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def med(self, what: str) -> float | None:
        xs = getattr(self, what)
        return statistics.median(xs) if xs else None


@dataclass
class Emulator:
    name: str
    modes: dict[str, Series] = field(
        default_factory=lambda: {m: Series() for m in MODES})
    log_bytes: list[int] = field(default_factory=list)
    uptime: list[float] = field(default_factory=list)    # record runs
    error: str = ""


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Record/replay overhead, replay speed and log size on "
                    "Rewind and QEMU, side by side.")
    ap.add_argument("--reps", type=int, default=3,
                    help="timed runs of each mode per emulator (default 3)")
    ap.add_argument("--scale", type=int, default=1,
                    help="size of the workload, a positive integer "
                         "(default 1: about 2 guest seconds)")
    ap.add_argument("--mem", default="512M", help="guest RAM (default 512M)")
    ap.add_argument("--no-bare", action="store_true",
                    help="skip the extra Rewind recording without "
                         "checkpoints (inputs only)")
    add_common_options(ap, keeps="the initramfs, recordings and consoles")
    args = ap.parse_args()

    if args.reps < 1:
        ap.error("--reps must be at least 1")
    if args.scale < 1:
        ap.error("--scale must be at least 1")
    if not re.fullmatch(r"\d+[KMG]?", args.mem):
        ap.error("--mem takes a size such as 512M or 1G")
    if qemu_missing(args.qemu):
        return 2

    return run_in_build_dir(args.build_dir, "record_replay.",
                            lambda work: bench(args, work), [(RunFailed, 1), (BenchError, 2)])


def bench(args: argparse.Namespace, build_dir: Path) -> int:
    start_load = os.getloadavg()
    rewind_path, rewind_reason = rewind_binary(args.no_build, args.rewind)
    rewind = str(rewind_path) if rewind_path else None

    gdir = args.guest_dir or cache_dir() / GUEST_SUBDIR
    guest = find_guest(gdir, rewind_path, args.timeout)
    script = build_dir / GUEST_SCRIPT
    script.write_text(GUEST_SCRIPT_TEXT
                      .replace("@LINES@", str(LINES_PER_SCALE * args.scale))
                      .replace("@MIB@", str(MIB_PER_SCALE * args.scale)),
                      encoding="utf-8")
    # The default initramfs plus the script, built once: every run boots
    # the same bytes (and a recording names the file by its hash).
    initrd = build_dir / "initramfs-rr.cpio"
    build_initrd(guest.initrd, {GUEST_SCRIPT: script}, initrd)

    console = build_dir / "console.txt"
    q_rr = build_dir / "qemu.rr"
    r_rr = build_dir / "rewind.rwd"
    boot = rewind_boot_args(guest, initrd, args.mem)
    cmds = {
        "qemu": {
            "run": qemu_cmd(args.qemu, guest, initrd, args.mem,
                            "shift=auto", console),
            "record": qemu_cmd(args.qemu, guest, initrd, args.mem,
                               f"shift=auto,rr=record,rrfile={q_rr}", console),
            "replay": qemu_cmd(args.qemu, guest, initrd, args.mem,
                               f"shift=auto,rr=replay,rrfile={q_rr}", console),
        },
        "rewind": {
            "run": [str(rewind), "run", *boot, "--serial", f"file:{console}"],
            "record": [str(rewind), "record", "-o", str(r_rr), *boot,
                       "--serial", f"file:{console}"],
            "replay": [str(rewind), "replay", str(r_rr),
                       "--serial", f"file:{console}",
                       "--report", str(build_dir / "replay.json")],
        },
    }
    emus = {"qemu": Emulator("QEMU"), "rewind": Emulator("Rewind")}
    if rewind is None:
        emus["rewind"].error = rewind_reason
    reference: list[str] = []        # the workload's output on QEMU

    def keep(name: str, text: str) -> str:
        path = build_dir / name
        path.write_text(text, encoding="utf-8")
        return f" (kept in {path})" if args.build_dir else ""

    def one(emu: str, mode: str, label: str) -> Proc:
        r = run_proc(cmds[emu][mode], args.timeout, console)
        if r.error:
            raise RunFailed(f"{emus[emu].name} {mode} ({label}) failed: "
                            f"{r.error}" + keep(f"failed-{emu}-{mode}.txt",
                                                r.console + r.stderr))
        err, lines, _ = workload_lines(r.console)
        if err:
            raise RunFailed(f"{emus[emu].name} {mode} ({label}): {err}"
                            + keep(f"failed-{emu}-{mode}.txt", r.console))
        if reference and lines != reference:
            raise RunFailed(f"{emus[emu].name} {mode} ({label}) printed "
                            f"other results than QEMU: {lines} vs {reference}")
        if args.verbose:
            log(f"{emus[emu].name} {mode} ({label}): {r.seconds:.2f} s wall, "
                f"{r.cpu:.2f} s CPU")
        return r

    host = HostCpu()
    t0 = os.times()
    busy0 = host.busy_seconds()
    wall0 = time.perf_counter()
    loads = [os.getloadavg()[0]]
    rewind_hash = ""            # the state hash every Rewind run must end in
    inspect_text = ""
    bare: dict[str, object] = {}

    # Check runs (untimed): QEMU's plain run gives the reference output,
    # Rewind's warms the page cache and gives the state hash to expect.
    log("check runs ...")
    r = one("qemu", "run", "check run")
    reference = workload_lines(r.console)[1]
    if emus["rewind"].error == "":
        # Only this run writes a report: its state hash hashes all of RAM
        # the guest touched, work that `record` mostly has from its
        # checkpoints, so timed runs with it would flatter record/run.
        report = build_dir / "run.json"
        plain_run = cmds["rewind"]["run"]
        cmds["rewind"]["run"] = plain_run + ["--report", str(report)]
        try:
            one("rewind", "run", "check run")
            rewind_hash = json.loads(report.read_text())["state_hash"]
        except (RunFailed, OSError, ValueError, KeyError) as e:
            emus["rewind"].error = str(e)
            log(f"rewind: n/a: {e}")
        finally:
            cmds["rewind"]["run"] = plain_run

    for rep in range(1, args.reps + 1):
        for emu in ("qemu", "rewind"):
            e = emus[emu]
            if e.error:
                continue
            log(f"{e.name}: run {rep} of {args.reps}: run, record, replay ...")
            consoles: dict[str, str] = {}
            for mode in MODES:
                r = one(emu, mode, f"run {rep}")
                consoles[mode] = r.console
                e.modes[mode].seconds.append(r.seconds)
                e.modes[mode].cpu.append(r.cpu)
                if mode == "record":
                    e.uptime.append(workload_lines(r.console)[2])
                    e.log_bytes.append((q_rr if emu == "qemu" else r_rr)
                                       .stat().st_size)
                if emu == "rewind":
                    check_rewind(mode, r, rewind_hash, build_dir)
                # Replay prints the recorded console again, byte for byte;
                # and on Rewind, recording does not change the run at all.
                if mode == "record" and emu == "rewind":
                    against = "run"
                elif mode == "replay":
                    against = "record"
                else:
                    continue
                if r.console != consoles[against]:
                    raise RunFailed(
                        f"{e.name}'s {mode} (run {rep}) printed another "
                        f"console than its {against}"
                        + keep(f"console-{emu}-{mode}.txt", r.console)
                        + keep(f"console-{emu}-{against}.txt",
                               consoles[against]))
            if emu == "rewind" and not inspect_text:
                inspect_text = subprocess.run(
                    [str(rewind), "inspect", str(r_rr)], capture_output=True,
                    text=True, check=False).stdout
        loads.append(os.getloadavg()[0])

    if not args.no_bare and not emus["rewind"].error:
        # The same run recorded without checkpoints: only the inputs and
        # the end (what a recording needs to replay at all), then replayed.
        log("Rewind: a recording without checkpoints ...")
        bare_rr = build_dir / "rewind-bare.rwd"
        cmds["rewind"]["bare"] = [str(rewind), "record", "-o", str(bare_rr),
                                  "--checkpoint-every", str(NO_CHECKPOINTS),
                                  *boot, "--serial", f"file:{console}"]
        cmds["rewind"]["bare-replay"] = [
            str(rewind), "replay", str(bare_rr), "--serial",
            f"file:{console}", "--report", str(build_dir / "replay.json")]
        r = one("rewind", "bare", "inputs only")
        check_rewind("record", r, rewind_hash, build_dir)
        bare = {"bytes": bare_rr.stat().st_size, "record_s": r.seconds,
                "record_cpu_s": r.cpu}
        r = one("rewind", "bare-replay", "inputs only")
        check_rewind("replay", r, rewind_hash, build_dir)
        bare.update(replay_s=r.seconds, replay_cpu_s=r.cpu)

    busy1 = host.busy_seconds()
    t1 = os.times()
    ours = sum(t1[:4]) - sum(t0[:4])
    wall = time.perf_counter() - wall0
    others = None
    if busy0 is not None and busy1 is not None and wall > 0:
        others = max(0.0, (busy1 - busy0 - ours) / wall)
    report_all(args, guest, emus, inspect_text, bare, rewind_reason,
               start_load, loads, others, wall)
    return 0


class RunFailed(BenchError):
    """A run that failed or printed what it should not (record/replay)."""


def check_rewind(mode: str, r: Proc, expected_hash: str,
                 build_dir: Path) -> None:
    """Rewind's own word on each run: the recording's end and the replay's
    verdict."""
    m = STATE_HASH_RE.search(r.stderr) if mode != "run" else None
    if mode == "record":
        if m is None or "recorded" not in r.stderr:
            raise RunFailed("rewind record printed no `recorded ... state "
                            f"hash` line: {r.stderr.strip()[-200:]!r}")
        if expected_hash and m[1] != expected_hash:
            raise RunFailed(f"rewind record ended in state hash {m[1]}, but "
                            f"rewind run in {expected_hash}: recording "
                            "changed what the guest did")
    if mode == "replay":
        if "matches the recording" not in r.stderr:
            raise RunFailed("rewind replay did not match the recording: "
                            f"{r.stderr.strip()[-300:]!r}")
        try:
            rep = json.loads((build_dir / "replay.json").read_text())
            ok = rep["replay"]["state_hash_matches"]
        except (OSError, ValueError, KeyError, TypeError):
            ok = None
        if ok is not True:
            raise RunFailed("rewind replay's --report does not say "
                            "state_hash_matches: true")


# --------------------------------------------------------------------------
# The report


def fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def human_bytes(n: float | None) -> str:
    if n is None:
        return "n/a"
    if n >= 10 ** 6:
        return f"{n / 1e6:.2f} MB"
    if n >= 10 ** 3:
        return f"{n / 1e3:.1f} kB"
    return f"{n:.0f} B"


def report_all(args: argparse.Namespace, guest: Guest,
               emus: dict[str, Emulator], inspect_text: str,
               bare: dict[str, object], rewind_reason: str,
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
          f"workload /{GUEST_SCRIPT} at scale {args.scale}")
    print(f"runs:      {args.reps} timed runs of each mode per emulator, "
          f"after one check run each; {wall / 60:.1f} minutes in all")
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

    q, r = emus["qemu"], emus["rewind"]
    what = {"run": "run (QEMU: -icount shift=auto)",
            "record": "record", "replay": "replay"}
    print("Median seconds of the whole process (wall and CPU):")
    rows = []
    for m in MODES:
        rows.append([what[m], fmt(q.modes[m].med("seconds")),
                     fmt(q.modes[m].med("cpu")),
                     fmt(r.modes[m].med("seconds")),
                     fmt(r.modes[m].med("cpu")),
                     fmt(div(r.modes[m].med("seconds"),
                             q.modes[m].med("seconds")))])
    print(table(["mode", "QEMU wall s", "QEMU CPU s", "Rewind wall s",
                 "Rewind CPU s", "Rewind/QEMU wall"], rows))
    print()

    def ratio_row(label: str, a: str, b: str, what: str) -> list[str]:
        return [label, fmt(div(q.modes[a].med(what), q.modes[b].med(what))),
                fmt(div(r.modes[a].med(what), r.modes[b].med(what)))]

    print("Ratios of those medians (record overhead: record / run; replay "
          "speed: replay / record, at most 1 means replay is at least as "
          "fast as recording):")
    print(table(["ratio", "QEMU", "Rewind"], [
        ratio_row("record / run, wall", "record", "run", "seconds"),
        ratio_row("record / run, CPU", "record", "run", "cpu"),
        ratio_row("replay / record, wall", "replay", "record", "seconds"),
        ratio_row("replay / record, CPU", "replay", "record", "cpu"),
    ]))
    print()

    def med(xs: list) -> float | None:
        xs = [x for x in xs if x is not None]
        return statistics.median(xs) if xs else None

    qb, rb = med(q.log_bytes), med(r.log_bytes)
    qu, ru = med(q.uptime), med(r.uptime)
    qps, rps = div(qb, qu), div(rb, ru)
    m = INSPECT_LENGTH_RE.search(inspect_text)
    r_guest = float(m[2]) if m else None
    r_instr = int(m[1]) if m else None
    events = dict((k, int(v)) for k, v in
                  INSPECT_EVENT_RE.findall(inspect_text))
    print("The recording (median over the record runs; guest seconds are "
          "the guest's /proc/uptime at the end of the workload):")
    rows = [
        ["log bytes", str(round(qb)) if qb else "n/a",
         str(round(rb)) if rb else "n/a", fmt(div(rb, qb), 3)],
        ["guest seconds", fmt(qu), fmt(ru), fmt(div(ru, qu))],
        ["log bytes per guest second", human_bytes(qps), human_bytes(rps),
         fmt(div(rps, qps), 3)],
    ]
    if bare:
        bb = bare["bytes"]
        rows.append(["Rewind without checkpoints: log bytes", "-",
                     str(bb), fmt(div(bb, qb), 4)])
        rows.append(["  ... per guest second", "-",
                     human_bytes(div(bb, ru)), fmt(div(div(bb, ru), qps), 4)])
    print(table(["", "QEMU", "Rewind", "Rewind/QEMU"], rows))
    if r_instr is not None:
        print(f"(Rewind's recording: {r_instr} instructions, {r_guest:.3f} s "
              "of guest time from power-on to power-off; events "
              + ", ".join(f"{k} {v}" for k, v in events.items())
              + (f"; with --checkpoint-every {NO_CHECKPOINTS}: "
                 f"{bare['bytes']} bytes, recorded in {bare['record_s']:.2f} s "
                 f"and replayed in {bare['replay_s']:.2f} s (wall)"
                 if bare else "") + ")")
    if q.log_bytes and len(set(q.log_bytes)) > 1:
        print(f"(QEMU's log sizes: {sorted(q.log_bytes)}: with shift=auto "
              "its virtual clock follows the host, so each recording differs)")
    for e in (q, r):
        if e.error:
            print(f"* {e.name} n/a: {e.error}")
    print()
    print(verdict(r, q, qb, rb))

    if args.json:
        def dump(e: Emulator) -> dict:
            return {"error": e.error or None, "log_bytes": e.log_bytes,
                    "uptime_s": e.uptime,
                    **{m: {"seconds": e.modes[m].seconds,
                           "cpu_seconds": e.modes[m].cpu} for m in MODES}}
        data = {
            "host_cpu": host_cpu(), "qemu_version": qemu_version,
            "rewind_revision": rewind_revision(),
            "kernel_version": guest.version, "mem": args.mem,
            "scale": args.scale, "reps": args.reps,
            "load_average_start": list(start_load),
            "load_average_during": loads, "other_processes_cpus": others,
            "qemu": dump(q), "rewind": dump(r), "rewind_inspect": inspect_text,
            "rewind_bare": bare or None,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n",
                             encoding="utf-8")


def verdict(r: Emulator, q: Emulator, qb: float | None,
            rb: float | None) -> str:
    """One line per goal of issue 5, with what was measured."""
    if r.error:
        return "Goals of issue 5: no Rewind numbers (see the n/a note)."
    over = div(r.modes["record"].med("seconds"), r.modes["run"].med("seconds"))
    over_cpu = div(r.modes["record"].med("cpu"), r.modes["run"].med("cpu"))
    speed = div(r.modes["replay"].med("seconds"),
                r.modes["record"].med("seconds"))
    speed_cpu = div(r.modes["replay"].med("cpu"), r.modes["record"].med("cpu"))
    size = div(rb, qb)

    def judged(wall: float, cpu: float, limit: float) -> str:
        by = [c for c, x in (("wall", wall), ("CPU", cpu)) if x <= limit]
        return ("met by both clocks" if len(by) == 2 else
                f"met by {by[0]} time only" if by else "not met")

    lines = ["Goals of issue 5:"]
    if size is not None:
        lines.append(f"- log at most 1/10 of QEMU's: Rewind/QEMU = "
                     f"{size:.3f} -- {'met' if size <= 0.1 else 'not met'}")
    if over is not None and over_cpu is not None:
        lines.append(f"- recording costs at most a few percent (5%) over run: "
                     f"record/run = {over:.3f} wall, {over_cpu:.3f} CPU -- "
                     + judged(over, over_cpu, 1.05))
    if speed is not None and speed_cpu is not None:
        lines.append(f"- replay at least as fast as recording: replay/record "
                     f"= {speed:.3f} wall, {speed_cpu:.3f} CPU -- "
                     + judged(speed, speed_cpu, 1.0)
                     + "; every replay matched its recording")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
