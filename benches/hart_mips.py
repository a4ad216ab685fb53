#!/usr/bin/env python3
"""Guest MIPS of bare-metal loops on Rewind and on QEMU, side by side.

Builds the workloads in benches/workloads/ (bare-metal RISC-V programs for the
QEMU `virt` memory map), counts from their disassembly exactly how many
instructions each one retires, checks that count against QEMU run with
`-icount shift=0` (where minstret counts instructions exactly), then times N
runs of each program on

    qemu-system-riscv64 -M virt -bios none -nographic -kernel prog.elf
    target/release/rewind run --firmware none --kernel prog.elf

and prints median wall times, MIPS and the ratio Rewind MIPS / QEMU MIPS.
Wall time is that of the whole process, start-up included; the `empty`
workload (exits at once) shows the start-up cost on its own, and a second
table gives MIPS net of it.

Python 3 standard library only. See benches/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import build_rewind, default_rewind, first_line, host_cpu, table

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORKLOAD_DIR = BENCH_DIR / "workloads"

CROSS = "riscv64-linux-gnu-"
CFLAGS = [
    "-march=rv64gc", "-mabi=lp64d", "-nostdlib", "-nostartfiles", "-static",
    "-no-pie", "-Wl,--build-id=none",
]

# Workload name -> default size in millions of instructions. Sized so that
# each takes about a second on QEMU 7.2 TCG on a current x86 host, where QEMU
# runs straight-line integer code at 3000-5000 MIPS, branchy code at about
# 1000 and floating point (a helper call per instruction) at about 200.
WORKLOADS = {
    "alu": 4000,
    "mem": 3000,
    "branch": 1000,
    "fp": 250,
}
EMPTY = "empty"

OUTPUT_RE = re.compile(r"instret=([0-9a-f]{16}) sum=([0-9a-f]{16})")


class BenchError(Exception):
    """A failure of the benchmark itself (toolchain, QEMU, counting)."""


# --------------------------------------------------------------------------
# Building and counting


@dataclass
class Program:
    name: str
    elf: Path
    iters: int            # loop iterations (0 for `empty`)
    per_iter: int         # instructions retired per iteration
    total: int            # instructions from _start to the finisher store
    window: int           # what the guest reports: [_start, loop_end)


def run_tool(cmd: list[str], what: str) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise BenchError(f"{what}: {cmd[0]} is not installed") from e
    if p.returncode != 0:
        raise BenchError(f"{what} failed:\n{p.stderr.strip()}")
    return p.stdout


def compile_workload(name: str, iters: int, out: Path) -> None:
    cmd = [CROSS + "gcc", *CFLAGS, "-T", str(WORKLOAD_DIR / "link.ld"),
           f"-I{WORKLOAD_DIR}", f"-DITERS={iters}",
           "-o", str(out), str(WORKLOAD_DIR / f"{name}.S")]
    run_tool(cmd, f"building {name}")


def disassemble(elf: Path) -> tuple[list[int], dict[str, int]]:
    """Addresses of all instructions in .text, and the labels."""
    text = run_tool([CROSS + "objdump", "-d", "--no-show-raw-insn", str(elf)],
                    f"disassembling {elf.name}")
    addrs: list[int] = []
    for line in text.splitlines():
        m = re.match(r"^\s+([0-9a-f]+):\s+\S", line)
        if m:
            addrs.append(int(m.group(1), 16))
    # Labels from the symbol table: objdump -d omits a label that has no
    # instruction after it (funcs_end at the end of .text).
    syms = run_tool([CROSS + "nm", str(elf)], f"listing symbols of {elf.name}")
    labels: dict[str, int] = {}
    for line in syms.splitlines():
        parts = line.split()
        if len(parts) == 3:
            labels[parts[2]] = int(parts[0], 16)
    return addrs, labels


def count_program(name: str, elf: Path, iters: int) -> Program:
    """Count retired instructions from the disassembly.

    Every workload is straight-line code apart from:
      - the loop [loop, loop_done), run `iters` times, closed by its back
        branch;
      - if/else diamonds then_N/else_N/join_N inside the loop, whose two arms
        must have the same number of instructions (checked here), so only the
        else arm is subtracted from the loop's static count;
      - functions [outer, funcs_end) called once per iteration.
    """
    addrs, labels = disassemble(elf)

    def n(a: str, b: str) -> int:
        lo, hi = labels[a], labels[b]
        return sum(1 for x in addrs if lo <= x < hi)

    for need in ("_start", "exit_end"):
        if need not in labels:
            raise BenchError(f"{name}: label {need} missing")
    if "loop" not in labels:
        total = n("_start", "exit_end")
        return Program(name, elf, 0, 0, total, total)

    for need in ("loop_done", "loop_end"):
        if need not in labels:
            raise BenchError(f"{name}: label {need} missing")
    per_iter = n("loop", "loop_done")
    k = 1
    while f"then_{k}" in labels:
        then_arm = n(f"then_{k}", f"else_{k}")   # includes the jump to join
        else_arm = n(f"else_{k}", f"join_{k}")
        if then_arm != else_arm:
            raise BenchError(f"{name}: diamond {k} is unbalanced "
                             f"({then_arm} vs {else_arm} instructions)")
        per_iter -= else_arm
        k += 1
    if "outer" in labels:
        per_iter += n("outer", "funcs_end")
    pre = n("_start", "loop")
    between = n("loop_done", "loop_end")
    post = n("loop_end", "exit_end")
    window = pre + iters * per_iter + between
    return Program(name, elf, iters, per_iter, window + post, window)


def build_programs(names: list[str], sizes: dict[str, float],
                   build_dir: Path) -> list[Program]:
    progs = []
    for name in names:
        elf = build_dir / f"{name}.elf"
        if name == EMPTY:
            compile_workload(name, 0, elf)
            progs.append(count_program(name, elf, 0))
            continue
        # Build once to learn the instructions per iteration, then again with
        # the iteration count that gives the wanted size. The count always
        # comes from the final ELF.
        compile_workload(name, 1, elf)
        probe = count_program(name, elf, 1)
        iters = max(1, round(sizes[name] * 1e6 / probe.per_iter))
        compile_workload(name, iters, elf)
        progs.append(count_program(name, elf, iters))
    return progs


# --------------------------------------------------------------------------
# Running


@dataclass
class RunResult:
    ok: bool
    seconds: float
    cpu_seconds: float
    stdout: str
    reason: str = ""


def run_once(cmd: list[str], timeout: float) -> RunResult:
    """Run `cmd` to completion; wall time covers the whole process."""
    start = time.perf_counter()
    try:
        # A session of its own, so that a timeout can end everything the
        # command started (a wrapper script's children too) and nothing else.
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as e:
        return RunResult(False, 0.0, 0.0, "", f"cannot start {cmd[0]}: {e}")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return RunResult(False, timeout, 0.0, "",
                         f"did not exit within {timeout:g} s")
    seconds = time.perf_counter() - start
    stdout = out.decode("utf-8", "replace")
    if proc.returncode != 0:
        last = err.decode("utf-8", "replace").strip().splitlines()
        tail = f": {last[-1]}" if last else ""
        return RunResult(False, seconds, 0.0, stdout,
                         f"exit status {proc.returncode}{tail}")
    return RunResult(True, seconds, 0.0, stdout)


def timed_run(cmd: list[str], timeout: float) -> RunResult:
    """run_once, plus the CPU time (user + system) of the process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = run_once(cmd, timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    r.cpu_seconds = ((after.ru_utime - before.ru_utime)
                     + (after.ru_stime - before.ru_stime))
    return r


def parse_output(stdout: str) -> tuple[int, str] | None:
    m = OUTPUT_RE.search(stdout)
    if not m:
        return None
    return int(m.group(1), 16), m.group(2)


def qemu_cmd(qemu: str, elf: Path, extra: list[str] | None = None) -> list[str]:
    return [qemu, "-M", "virt", "-bios", "none", "-nographic",
            "-kernel", str(elf), *(extra or [])]


def rewind_cmd(rewind: Path, elf: Path, engine: str | None = None) -> list[str]:
    cmd = [str(rewind), "run", "--firmware", "none", "--kernel", str(elf)]
    if engine:
        cmd += ["--engine", engine]
    return cmd


def check_output(prog: Program, r: RunResult, want_sum: str | None,
                 check_instret: bool) -> tuple[str, str, str]:
    """(error, warning, sum) for one run's output."""
    if prog.name == EMPTY:
        return "", "", ""
    parsed = parse_output(r.stdout)
    if parsed is None:
        got = r.stdout.strip().splitlines()
        shown = repr(got[-1][:80]) if got else "nothing"
        return f"printed {shown}, not the instret/sum line", "", ""
    instret, csum = parsed
    if want_sum is not None and csum != want_sum:
        return f"computed sum={csum}, QEMU sum={want_sum}", "", csum
    warn = ""
    if check_instret and instret != prog.window:
        warn = (f"guest read minstret delta {instret}, "
                f"expected {prog.window}")
    return "", warn, csum


def verify_with_icount(qemu: str, prog: Program, timeout: float) -> str:
    """Run once under QEMU -icount shift=0 (minstret exact); return the sum."""
    r = run_once(qemu_cmd(qemu, prog.elf, ["-icount", "shift=0"]), timeout)
    if not r.ok:
        raise BenchError(f"QEMU -icount run of {prog.name} failed: {r.reason}")
    if prog.name == EMPTY:
        return ""
    parsed = parse_output(r.stdout)
    if parsed is None:
        raise BenchError(f"QEMU -icount run of {prog.name} printed "
                         f"{r.stdout!r}")
    instret, csum = parsed
    if instret != prog.window:
        raise BenchError(
            f"{prog.name}: the instruction count from the disassembly "
            f"({prog.window} in the measured window) disagrees with QEMU's "
            f"exact count ({instret}); fix the workload or the counting")
    return csum


@dataclass
class Series:
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    error: str = ""
    warning: str = ""

    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    def median_cpu(self) -> float | None:
        return statistics.median(self.cpu) if self.cpu else None


# --------------------------------------------------------------------------
# Rewind binary


# --------------------------------------------------------------------------
# Reporting


def rewind_revision() -> str:
    try:
        p = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                           cwd=REPO_DIR, capture_output=True, text=True,
                           check=False)
        rev = p.stdout.strip() if p.returncode == 0 else "no commit"
        dirty = subprocess.run(["git", "status", "--porcelain"],
                               cwd=REPO_DIR, capture_output=True, text=True,
                               check=False).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "")
    except OSError:
        return "unknown"


def fmt_s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def fmt_mips(instr: int, secs: float | None) -> str:
    if secs is None or secs <= 0:
        return "n/a"
    return f"{instr / secs / 1e6:.0f}"


def mips(instr: int, secs: float | None) -> float | None:
    if secs is None or secs <= 0:
        return None
    return instr / secs / 1e6


# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Guest MIPS of bare-metal loops on Rewind and QEMU.")
    ap.add_argument("--runs", type=int, default=5,
                    help="timed runs per workload and emulator (default 5)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every workload's size (default 1.0; "
                         "0.1 for a quick look)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated subset of: "
                         + ", ".join(WORKLOADS))
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--rewind", type=Path, default=default_rewind(),
                    help="the rewind binary (default target/release/rewind, "
                         "under $CARGO_TARGET_DIR if set)")
    ap.add_argument("--no-build", action="store_true",
                    help="do not run cargo build --release; use --rewind as is")
    ap.add_argument("--no-rewind", action="store_true",
                    help="measure QEMU only")
    ap.add_argument("--no-verify", action="store_true",
                    help="skip checking the counts under QEMU -icount")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds before a run is abandoned (default 300)")
    ap.add_argument("--build-dir", type=Path,
                    help="keep the built programs here (default: a temp dir)")
    ap.add_argument("--engine", choices=["jit", "interp"],
                    help="Rewind's engine (default: Rewind's own default)")
    ap.add_argument("--json", type=Path, help="also write all results here")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print every run's time")
    args = ap.parse_args()

    names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for w in names:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r}")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if shutil.which(args.qemu) is None:
        print(f"error: {args.qemu} not found", file=sys.stderr)
        return 2
    sizes = {w: WORKLOADS[w] * args.scale for w in names}

    tmp = None
    if args.build_dir:
        build_dir = args.build_dir
        build_dir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="hart_mips.")
        build_dir = Path(tmp.name)

    try:
        return bench(args, [EMPTY, *names], sizes, build_dir)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if tmp:
            tmp.cleanup()


def bench(args: argparse.Namespace, names: list[str], sizes: dict[str, float],
          build_dir: Path) -> int:
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731

    progs = build_programs(names, sizes, build_dir)

    # Reference results: QEMU with -icount checks the counts, and its sums are
    # what every later run must print.
    ref_sum: dict[str, str | None] = {}
    for p in progs:
        if args.no_verify:
            ref_sum[p.name] = None
            continue
        log(f"checking {p.name}: {p.total} instructions "
            f"({p.iters} x {p.per_iter} + {p.total - p.iters * p.per_iter})"
            " against QEMU -icount ...")
        ref_sum[p.name] = verify_with_icount(args.qemu, p, args.timeout)

    # The rewind binary.
    rewind_reason = ""
    if args.no_rewind:
        rewind_reason = "not measured (--no-rewind)"
    else:
        if not args.no_build:
            rewind_reason = build_rewind(os.environ.get("CARGO", "cargo"))
        if not rewind_reason and not args.rewind.is_file():
            rewind_reason = f"{args.rewind} does not exist"

    qemu: dict[str, Series] = {p.name: Series() for p in progs}
    rew: dict[str, Series] = {p.name: Series() for p in progs}
    if rewind_reason:
        for s in rew.values():
            s.error = rewind_reason
        log(f"rewind: n/a: {rewind_reason}")

    loads = [os.getloadavg()[0]]
    for p in progs:
        # One untimed run of each first: warms the page cache and checks the
        # output; a Rewind that fails it is not timed further.
        for emu, series, cmd in (
                ("qemu", qemu[p.name], qemu_cmd(args.qemu, p.elf)),
                ("rewind", rew[p.name], rewind_cmd(args.rewind, p.elf, args.engine))):
            if series.error:
                continue
            log(f"{p.name}: {emu} check run ...")
            r = timed_run(cmd, args.timeout)
            err, warn, csum = (r.reason, "", "") if not r.ok else \
                check_output(p, r, ref_sum[p.name],
                             check_instret=(emu == "rewind"))
            if err:
                if emu == "qemu":
                    raise BenchError(f"QEMU run of {p.name}: {err}")
                series.error = err
                log(f"{p.name}: rewind: n/a: {err}")
            if warn:
                series.warning = warn
                log(f"{p.name}: {emu}: warning: {warn}")
            if emu == "qemu" and ref_sum[p.name] is None and csum:
                ref_sum[p.name] = csum

        # Timed runs, alternating the two emulators so that slow drift in the
        # host affects both alike.
        for i in range(args.runs):
            for emu, series, cmd in (
                    ("qemu", qemu[p.name], qemu_cmd(args.qemu, p.elf)),
                    ("rewind", rew[p.name], rewind_cmd(args.rewind, p.elf, args.engine))):
                if series.error:
                    continue
                r = timed_run(cmd, args.timeout)
                err = r.reason if not r.ok else \
                    check_output(p, r, ref_sum[p.name], False)[0]
                if err:
                    if emu == "qemu":
                        raise BenchError(f"QEMU run of {p.name}: {err}")
                    series.error = f"run {i + 1}: {err}"
                    series.times.clear()
                    series.cpu.clear()
                    continue
                series.times.append(r.seconds)
                series.cpu.append(r.cpu_seconds)
                if args.verbose:
                    log(f"{p.name}: {emu} run {i + 1}: {r.seconds:.3f} s wall,"
                        f" {r.cpu_seconds:.3f} s CPU")
        loads.append(os.getloadavg()[0])

    report(args, progs, qemu, rew, rewind_reason, loads)
    return 0


def report(args: argparse.Namespace, progs: list[Program],
           qemu: dict[str, Series], rew: dict[str, Series],
           rewind_reason: str, loads: list[float]) -> None:
    print(f"host CPU:  {host_cpu()}")
    print(f"host OS:   {platform.system()} {platform.release()}")
    print(f"QEMU:      {first_line([args.qemu, '--version'])}")
    print(f"rewind:    {args.rewind} ({rewind_revision()})"
          + (f" -- n/a: {rewind_reason}" if rewind_reason else ""))
    print(f"runs:      {args.runs} per workload and emulator, median wall "
          "time of the whole process (start-up included)")
    # The benchmark itself keeps about one CPU busy; more than that means
    # other work shared the host and the wall times are inflated.
    busy = 1.0 + 0.25 * (os.cpu_count() or 1)
    print(f"host load: 1-minute load average {min(loads):.2f} to "
          f"{max(loads):.2f} during the runs"
          + (f" -- WARNING: busy host (above {busy:.2f}); wall times are "
             "inflated, compare the CPU-time table"
             if max(loads) > busy else ""))
    print()

    headers = ["workload", "instructions", "QEMU s", "QEMU MIPS",
               "Rewind s", "Rewind MIPS", "Rewind/QEMU"]
    rows = []
    notes: list[str] = []
    for p in progs:
        q, r = qemu[p.name].median(), rew[p.name].median()
        qm, rm = mips(p.total, q), mips(p.total, r)
        if p.name == EMPTY:
            qm_s, rm_s, ratio = "-", "-", "-"
        else:
            qm_s, rm_s = fmt_mips(p.total, q), fmt_mips(p.total, r)
            ratio = f"{rm / qm:.2f}" if qm and rm else "n/a"
        r_s = fmt_s(r)
        err = rew[p.name].error
        if err and err != rewind_reason:
            notes.append(f"{p.name}: Rewind n/a: {err}")
            r_s = "n/a*"
        if rew[p.name].warning:
            notes.append(f"{p.name}: Rewind: {rew[p.name].warning}")
        rows.append([p.name, f"{p.total:,}", fmt_s(q), qm_s, r_s, rm_s,
                     ratio])
    print(table(headers, rows))
    if rewind_reason:
        print(f"\nRewind: n/a: {rewind_reason}")
    for n in notes:
        print(f"* {n}")

    # Start-up apart: subtract the empty program's median from each.
    qe, re_ = qemu[EMPTY].median(), rew[EMPTY].median()
    print()
    print("Start-up and shut-down (the empty program's median): "
          f"QEMU {fmt_s(qe)} s, Rewind "
          + (f"{fmt_s(re_)} s" if re_ is not None else "n/a")
          + ". MIPS net of it:")
    rows = []
    for p in progs:
        if p.name == EMPTY:
            continue
        q, r = qemu[p.name].median(), rew[p.name].median()
        qn = mips(p.total, q - qe) if q is not None and qe is not None else None
        rn = mips(p.total, r - re_) if r is not None and re_ is not None \
            else None
        rows.append([p.name, f"{qn:.0f}" if qn else "n/a",
                     f"{rn:.0f}" if rn else "n/a",
                     f"{rn / qn:.2f}" if qn and rn else "n/a"])
    print(table(["workload", "QEMU net MIPS", "Rewind net MIPS",
                 "Rewind/QEMU"], rows))

    # CPU time (user + system) of each process: the same runs, counted in CPU
    # seconds, which other work on the host disturbs less than wall time.
    print()
    print("The same runs by median CPU time (user + system, all threads):")
    rows = []
    for p in progs:
        qc, rc = qemu[p.name].median_cpu(), rew[p.name].median_cpu()
        if p.name == EMPTY:
            qm_s = rm_s = ratio = "-"
        else:
            qm, rm = mips(p.total, qc), mips(p.total, rc)
            qm_s, rm_s = fmt_mips(p.total, qc), fmt_mips(p.total, rc)
            ratio = f"{rm / qm:.2f}" if qm and rm else "n/a"
        rows.append([p.name, fmt_s(qc), qm_s, fmt_s(rc), rm_s, ratio])
    print(table(["workload", "QEMU CPU s", "QEMU MIPS", "Rewind CPU s",
                 "Rewind MIPS", "Rewind/QEMU"], rows))

    if args.json:
        data = {
            "load_average": loads,
            "host_cpu": host_cpu(),
            "qemu_version": first_line([args.qemu, "--version"]),
            "rewind_revision": rewind_revision(),
            "rewind_unavailable": rewind_reason or None,
            "runs": args.runs,
            "workloads": [{
                "name": p.name, "instructions": p.total,
                "iterations": p.iters, "per_iteration": p.per_iter,
                "qemu_seconds": qemu[p.name].times,
                "qemu_cpu_seconds": qemu[p.name].cpu,
                "rewind_seconds": rew[p.name].times,
                "rewind_cpu_seconds": rew[p.name].cpu,
                "rewind_error": rew[p.name].error or None,
                "rewind_warning": rew[p.name].warning or None,
            } for p in progs],
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n",
                             encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
