#!/usr/bin/env python3
"""Rewind's host memory while the guest writes its disk (issue 11, point 6).

Boots Debian's riscv64 kernel with Rewind's default initramfs (the guest
`rewind run` fetches and caches), 256 MiB of RAM and a raw disk image of
2 GiB (a sparse file this script makes), and has the guest write 1 GiB of
random data to the disk:

    rewind run --kernel Image --initrd CPIO --firmware fw_dynamic.bin
        --mem 256M --disk disk.img --overlay-dir WORK/overlays
        --serial file:CONSOLE --append "console=ttyS0 rewind.run=/disk_rss.sh"

where /disk_rss.sh (in a small cpio archive appended to the default
initramfs) runs

    dd if=/dev/urandom of=/dev/vda bs=1M count=1024 oflag=direct

The disk has no `persist`, so every block the guest writes goes to the
copy-on-write overlay, which must live in a host file, not in Rewind's
memory. The script reports Rewind's maximum resident set size (ru_maxrss of
that one process, from wait4) against the target, 400 MB, beside a baseline
run that boots the same machine and writes nothing, and how much host disk
the overlay's file took at its largest (sampled from /proc/PID/fd while the
run goes: the file has no name).

Python 3 standard library only. See benches/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchlib import (GUEST_SUBDIR, default_rewind, host_cpu, log,
                      rewind_binary, run_in_build_dir)
# The guest files and the initramfs packing are linux_boot.py's, the
# virtio-only module list virtio_io.py's: shared rather than copied.
from linux_boot import (BenchError, Guest, build_initrd, cache_dir,
                        find_guest, rewind_revision)
from virtio_io import MODULE_LIST, virtio_module_list

EXIT_PREFIX = "Rewind: exit status "         # crates/guest/src/init.rs
GUEST_SCRIPT = "disk_rss.sh"
CMDLINE = f"console=ttyS0 rewind.run=/{GUEST_SCRIPT}"
TARGET_MB = 400.0                            # issue 11: max RSS under 400 MB

STATUS_RE = re.compile(r"disk_rss: status (\d+) (.*)")
ERROR_RE = re.compile(r"disk_rss: error: (.*)")

GUEST_SCRIPT_TEXT = r"""#!/bin/sh
# Written by benches/disk_rss.py; /init runs it (rewind.run=/disk_rss.sh).
# With 0 MiB (the baseline) it only checks that the disk is there.
[ -b /dev/vda ] || { echo "disk_rss: error: no /dev/vda"; exit 1; }
[ @MIB@ -gt 0 ] || exit 0
dd if=/dev/urandom of=/dev/vda bs=1M count=@MIB@ oflag=direct 2> /tmp/dd.err
rc=$?
echo "disk_rss: status $rc $(grep 'records out' /tmp/dd.err)"
"""


@dataclass
class Run:
    """One rewind process."""
    write_mib: int
    error: str = ""
    max_rss_bytes: int = 0          # ru_maxrss of the process
    overlay_peak_bytes: int = 0     # host disk its overlay file took
    wall_s: float = 0.0
    cpu_s: float = 0.0
    dd: str = ""                    # dd's "records out" line


def overlay_bytes(pid: int, overlay_dir: Path) -> int:
    """Host disk taken by the files process `pid` has open in
    `overlay_dir` (its overlays, which have no name)."""
    total = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in fds:
        path = f"/proc/{pid}/fd/{fd}"
        try:
            if os.readlink(path).startswith(str(overlay_dir) + "/"):
                total += os.stat(path).st_blocks * 512
        except OSError:
            pass
    return total


def run_rewind(cmd: list[str], overlay_dir: Path, console: Path,
               timeout: float, write_mib: int) -> Run:
    """Runs one rewind process to its end; its maximum RSS from wait4 (of
    this process alone: ru_maxrss of RUSAGE_CHILDREN would be the largest
    of every child so far, cargo's compilers included)."""
    run = Run(write_mib)
    console.unlink(missing_ok=True)
    err_path = console.with_suffix(".stderr")
    start = time.perf_counter()
    with open(err_path, "wb") as err_f:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err_f,
                                    start_new_session=True)
        except OSError as e:
            run.error = f"cannot start {cmd[0]}: {e}"
            return run
        reaped = False
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    reaped = True
                    break
                run.overlay_peak_bytes = max(
                    run.overlay_peak_bytes, overlay_bytes(proc.pid, overlay_dir))
                if time.perf_counter() - start > timeout:
                    run.error = f"did not exit within {timeout:g} s"
                    return run
                time.sleep(0.5)
        finally:
            # On a timeout or Ctrl-C, end rewind (and only it).
            if not reaped:
                os.killpg(proc.pid, signal.SIGKILL)
                os.waitpid(proc.pid, 0)
    # Popen must not wait for a pid that wait4 has reaped.
    proc.returncode = os.waitstatus_to_exitcode(status)
    run.wall_s = time.perf_counter() - start
    run.cpu_s = usage.ru_utime + usage.ru_stime
    run.max_rss_bytes = usage.ru_maxrss * 1024      # KiB on Linux
    text = console.read_text(encoding="utf-8", errors="replace") \
        if console.exists() else ""
    if proc.returncode != 0:
        lines = err_path.read_text(encoding="utf-8",
                                   errors="replace").strip().splitlines()
        run.error = f"exit status {proc.returncode}" + (
            f": {lines[-1].strip()}" if lines else "")
        return run
    m = ERROR_RE.search(text)
    if m:
        run.error = f"the guest script failed: {m[1].strip()}"
        return run
    m = STATUS_RE.search(text)
    if write_mib:
        if not m:
            run.error = "no status line from the guest (console ended early?)"
            return run
        run.dd = m[2].strip()
        # dd's "N+0 records out": every 1 MiB block was written whole.
        if m[1] != "0" or f"{write_mib}+0 records out" not in run.dd:
            run.error = f"dd exited with status {m[1]}: {run.dd}"
            return run
    if EXIT_PREFIX + "0" not in text:
        run.error = f"no `{EXIT_PREFIX}0` line on the console"
    return run


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Rewind's maximum RSS while the guest writes 1 GiB to "
                    "its overlay disk (target: under 400 MB).")
    ap.add_argument("--write-mib", type=int, default=1024,
                    help="MiB the guest writes with dd (default 1024)")
    ap.add_argument("--disk-gib", type=int, default=2,
                    help="size of the sparse raw disk image (default 2)")
    ap.add_argument("--mem", default="256M", help="guest RAM (default 256M)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the run that writes nothing")
    ap.add_argument("--rewind", type=Path, default=default_rewind(),
                    help="the rewind binary (default target/release/rewind, "
                         "under $CARGO_TARGET_DIR if set)")
    ap.add_argument("--no-build", action="store_true",
                    help="do not run cargo build --release; use --rewind as is")
    ap.add_argument("--guest-dir", type=Path,
                    help="the default guest's files (default: rewind's cache, "
                         f"<cache>/{GUEST_SUBDIR})")
    ap.add_argument("--timeout", type=float, default=3600.0,
                    help="seconds before a run is abandoned (default 3600)")
    ap.add_argument("--build-dir", type=Path,
                    help="keep the initramfs, disk image, overlay directory "
                         "and consoles here (default: a temp dir; the disk "
                         "image is sparse, the overlay's file gone at exit)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.write_mib < 1 or args.disk_gib < 1:
        ap.error("--write-mib and --disk-gib must be at least 1")
    if args.write_mib > args.disk_gib * 1024:
        ap.error("--write-mib is more than the disk holds")
    if not re.fullmatch(r"\d+[KMG]?", args.mem):
        ap.error("--mem takes a size such as 256M or 1G")
    return run_in_build_dir(args.build_dir, "disk_rss.",
                            lambda work: bench(args, work), [(BenchError, 2)])


def bench(args: argparse.Namespace, work: Path) -> int:
    rewind, reason = rewind_binary(args.no_build, args.rewind)
    if rewind is None:
        print(f"error: rewind cannot be measured: {reason}", file=sys.stderr)
        return 1
    gdir = args.guest_dir or cache_dir() / GUEST_SUBDIR
    guest = find_guest(gdir, rewind, args.timeout)
    load = os.getloadavg()

    runs = []
    for mib in ([] if args.no_baseline else [0]) + [args.write_mib]:
        script = work / GUEST_SCRIPT
        text = GUEST_SCRIPT_TEXT.replace("@MIB@", str(mib))
        script.write_text(text, encoding="utf-8")
        # The default initramfs plus the script, loading only the virtio
        # modules (not ext4, which nothing here needs).
        extra = {GUEST_SCRIPT: script}
        modules = virtio_module_list(gdir, guest.version)
        if modules is not None:
            (work / "rewind-modules").write_bytes(modules)
            extra[MODULE_LIST] = work / "rewind-modules"
        initrd = work / "initramfs-disk_rss.cpio"
        build_initrd(guest.initrd, extra, initrd)
        # A fresh sparse image and overlay directory for every run.
        disk = work / "disk.img"
        with open(disk, "wb") as f:
            f.truncate(args.disk_gib << 30)
        overlay_dir = (work / "overlays").resolve()
        overlay_dir.mkdir(exist_ok=True)
        console = work / f"console-{mib}.txt"
        cmd = [str(rewind), "run", "--kernel", str(guest.kernel),
               "--initrd", str(initrd), "--firmware", str(guest.firmware),
               "--mem", args.mem, "--append", CMDLINE,
               "--disk", str(disk), "--overlay-dir", str(overlay_dir),
               "--serial", f"file:{console}"]
        log(f"rewind: booting and writing {mib} MiB ...")
        run = run_rewind(cmd, overlay_dir, console, args.timeout, mib)
        left = list(overlay_dir.iterdir())
        if not run.error and left:
            run.error = f"files left in the overlay directory: {left}"
        log(f"rewind: {mib} MiB: " + (run.error or
            f"max RSS {run.max_rss_bytes / 1e6:.1f} MB, "
            f"{run.wall_s:.1f} s"))
        runs.append(run)

    report(args, guest, rewind, runs, load)
    return 1 if any(r.error for r in runs) else 0


def report(args: argparse.Namespace, guest: Guest, rewind: Path,
           runs: list[Run], load: tuple[float, float, float]) -> None:
    print(f"host CPU:  {host_cpu()}")
    print(f"host OS:   {platform.system()} {platform.release()}")
    print(f"rewind:    {rewind} ({rewind_revision()})")
    print(f"guest:     Linux {guest.version}; {args.mem} RAM, 1 hart; "
          f"sparse raw image of {args.disk_gib} GiB without persist (writes "
          "go to the overlay, in --overlay-dir)")
    print(f"workload:  dd if=/dev/urandom of=/dev/vda bs=1M "
          f"count={args.write_mib} oflag=direct")
    print(f"host load: load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} at the start")
    print()
    print("| run | max RSS, MB | overlay file at its largest, MB "
          "| wall s | CPU s |")
    print("|---|---:|---:|---:|---:|")
    for r in runs:
        what = ("boot, write nothing" if r.write_mib == 0
                else f"boot, write {r.write_mib} MiB")
        if r.error:
            print(f"| {what} | n/a | n/a | n/a | n/a |")
            continue
        print(f"| {what} | {r.max_rss_bytes / 1e6:.1f} "
              f"| {r.overlay_peak_bytes / 1e6:.1f} | {r.wall_s:.1f} "
              f"| {r.cpu_s:.1f} |")
    for r in runs:
        if r.error:
            print(f"* {r.write_mib} MiB: n/a: {r.error}")
    print("(MB = 10^6 bytes; max RSS is ru_maxrss of the rewind process; "
          "the overlay file is sampled every 0.5 s)")
    print()
    last = runs[-1]
    if last.error:
        print(f"Target: max RSS under {TARGET_MB:.0f} MB while the guest "
              f"writes {args.write_mib} MiB -- not measured")
    else:
        rss = last.max_rss_bytes / 1e6
        verdict = "met" if rss < TARGET_MB else "NOT met"
        print(f"Target: max RSS under {TARGET_MB:.0f} MB while the guest "
              f"writes {args.write_mib} MiB: {rss:.1f} MB -- {verdict}")
        if len(runs) == 2 and not runs[0].error:
            grew = (last.max_rss_bytes - runs[0].max_rss_bytes) / 1e6
            print(f"           {grew:+.1f} MB over the run that writes "
                  "nothing")
    if args.json:
        args.json.write_text(json.dumps({
            "target_mb": TARGET_MB, "mem": args.mem,
            "disk_gib": args.disk_gib, "runs": [asdict(r) for r in runs],
        }, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
