#!/usr/bin/env python3
"""Virtio I/O throughput on Rewind and on QEMU, side by side.

Boots Debian's riscv64 kernel with Rewind's default initramfs (the guest
`rewind run` fetches and caches) on both emulators, with the same kernel,
initramfs, OpenSBI, memory, harts, raw disk image and user-mode networking:

    rewind run --kernel Image --initrd CPIO --firmware fw_dynamic.bin
        --mem 512M --smp 1 --disk disk.img,persist --net user
        --serial file:CONSOLE --append "console=ttyS0 rewind.run=/virtio_io.sh"
    qemu-system-riscv64 -M virt -m 512M -smp 1 -bios fw_dynamic.bin
        -kernel Image -initrd CPIO -append "..." -no-reboot
        -drive file=disk.img,format=raw,if=none,id=d0
        -device virtio-blk-device,drive=d0
        -netdev user,id=n0 -device virtio-net-device,netdev=n0
        -device virtio-rng-device -display none -monitor none
        -serial file:CONSOLE

The guest script (/virtio_io.sh, in a small cpio archive appended to the
default initramfs) runs three transfers, one after the other:

  write  dd if=/dev/zero of=/dev/vda bs=1M count=N oflag=direct conv=fsync
  read   dd if=/dev/vda of=/dev/null bs=1M count=N iflag=direct
         (page cache dropped first)
  net    wget -q -O /dev/null http://10.0.2.2:PORT/file, M MiB served by an
         HTTP server this script runs on the host's 127.0.0.1

and prints a marker line with the guest's CLOCK_MONOTONIC before and after
each. Each transfer is timed twice: by the guest's clock (from the markers;
on Rewind that clock is virtual, one instruction = one nanosecond) and by the
host's wall clock (when the marker lines appear in the console file, which
this script watches while the emulator runs). It reports medians over --reps
boots of MB/s (10^6 bytes per second) by each clock, the emulator's host CPU
time per transfer, and the ratio Rewind/QEMU of wall-clock throughput (above
1: Rewind is faster).

The guest's writes go into the image on both (Rewind `persist`, QEMU's
default), and the image is rewritten with 0x5a bytes before every boot;
--overlay keeps them out of it instead (Rewind's in-memory overlay, QEMU
snapshot=on). /etc/rewind-modules is replaced by the virtio modules alone, so
that /init does not spend seconds loading ext4.

Python 3 standard library only. See benches/README.md.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (GUEST_SUBDIR, add_common_options, first_line, host_cpu,
                      log, qemu_missing, rewind_binary, run_in_build_dir,
                      table)
# The guest files, the initramfs packing and the host-load accounting are the
# same as linux_boot.py's; share them rather than keep two copies.
from linux_boot import (BenchError, Guest, HostCpu,
                        build_initrd, cache_dir, find_guest, rewind_revision)

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent

EXIT_PREFIX = "Rewind: exit status "         # crates/guest/src/init.rs
GUEST_SCRIPT = "virtio_io.sh"
# No rewind.modules=: the default `auto` has /init load the modules in
# /etc/rewind-modules (see NEEDED_MODULE_DIRS), since both device trees have
# virtio-mmio nodes.
CMDLINE = f"console=ttyS0 rewind.run=/{GUEST_SCRIPT}"

# Default sizes: on this project's 2-core EPYC host each transfer then takes
# one to three seconds of wall time on Rewind (the read less), long enough
# that the few milliseconds of marker overhead and console polling hardly
# count, while a whole default run (a check boot and 3 timed boots on each
# emulator) stays within a few minutes. --disk-mb and --net-mb change them.
DEFAULT_DISK_MB = 512
DEFAULT_NET_MB = 64
TRANSFERS = ("write", "read", "net")

MARK_RE = re.compile(r"virtio_io: (begin|end) (write|read|net) (\d+)")
STATUS_RE = re.compile(r"virtio_io: status (write|read|net) (\d+)(.*)")
ERROR_RE = re.compile(r"virtio_io: error: (.*)")

# The guest's clock: the "now at N nsecs" line of /proc/timer_list is
# CLOCK_MONOTONIC in nanoseconds. Busybox's date has no %N and /proc/uptime
# counts hundredths, so this is the finest clock a shell script can read.
GUEST_SCRIPT_TEXT = r"""#!/bin/sh
# Written by benches/virtio_io.py; /init runs it (rewind.run=/virtio_io.sh).
# Prints "virtio_io: begin|end TRANSFER NS" around each transfer, NS being the
# guest's CLOCK_MONOTONIC, and "virtio_io: status TRANSFER RC DETAIL" after.
DISK_MB=@DISK_MB@
NET_URL=http://10.0.2.2:@PORT@/file
WRITE_FLAGS="@WRITE_FLAGS@"
READ_FLAGS="@READ_FLAGS@"

fail() { echo "virtio_io: error: $*"; exit 1; }
mark() {
    t=$(grep -m1 '^now at ' /proc/timer_list)
    t=${t#now at }
    echo "virtio_io: $1 $2 ${t% nsecs}"
}
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

[ -b /dev/vda ] || fail "no /dev/vda (virtio-blk did not appear)"
# A static address, as the DHCP server of either emulator would give: the
# same on both, and no DHCP exchange to wait for.
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 &&
    ip route add default via 10.0.2.2 || fail "cannot configure eth0"

drop_caches
mark begin write
dd if=/dev/zero of=/dev/vda bs=1M count=$DISK_MB $WRITE_FLAGS 2> /tmp/dd.err
rc=$?
mark end write
echo "virtio_io: status write $rc $(grep 'records out' /tmp/dd.err)"

drop_caches
mark begin read
dd if=/dev/vda of=/dev/null bs=1M count=$DISK_MB $READ_FLAGS 2> /tmp/dd.err
rc=$?
mark end read
echo "virtio_io: status read $rc $(grep 'records in' /tmp/dd.err)"

mark begin net
wget -q -O /dev/null "$NET_URL" 2> /tmp/wget.err
rc=$?
mark end net
echo "virtio_io: status net $rc $(head -c 200 /tmp/wget.err | tr '\n' ' ')"
echo "virtio_io: done"
"""

# The modules the benchmark needs, by their directory in the kernel tree:
# the virtio-mmio transport and the virtio devices (net/core/failover is
# virtio_net's dependency). The default list also has ext4 and what it needs
# (jbd2, mbcache, crc16, crc32c), which nothing here uses and whose loading
# costs over two billion guest instructions, several seconds per boot on
# Rewind.
NEEDED_MODULE_DIRS = ("kernel/drivers/", "kernel/net/")
MODULE_LIST = "etc/rewind-modules"          # crates/guest/src/init.rs


def virtio_module_list(gdir: Path, version: str) -> bytes | None:
    """/etc/rewind-modules for /init with only the virtio modules, in the
    default list's order (the `module=` lines of the guest's manifest.txt);
    None if the manifest names no modules (then the default list stays)."""
    try:
        text = (gdir / "manifest.txt").read_text(encoding="utf-8")
    except OSError:
        return None
    paths = [line.split("=", 1)[1].split()[0] for line in text.splitlines()
             if line.startswith("module=")]
    keep = [p for p in paths if p.startswith(NEEDED_MODULE_DIRS)]
    if not keep:
        return None
    return "".join(f"/lib/modules/{version}/{p}\n" for p in keep).encode()


# dd flags: by default O_DIRECT both ways, so that every 1 MiB block is one
# request to the device and the guest's page cache is out of the picture;
# conv=fsync makes the write end with a FLUSH (on the host: fdatasync of the
# image on both emulators). --cached goes through the page cache instead.
DIRECT_FLAGS = ("oflag=direct conv=fsync", "iflag=direct")
CACHED_FLAGS = ("conv=fsync", "")


# --------------------------------------------------------------------------
# The host side of the network transfer


class FileServer:
    """An HTTP/1.0 server on 127.0.0.1 (an ephemeral port) serving `size`
    bytes at /file, in a thread. Counts the bytes each completed request sent,
    so a run can be checked to have received the whole file."""

    def __init__(self, size: int) -> None:
        # The body is a 64 KiB block repeated, never held whole: bytes 0..255
        # over and over (nothing on the path compresses, and in a packet
        # capture a lost or repeated segment shows).
        self.size = size
        block = memoryview(bytes(range(256)) * 256)
        self.lock = threading.Lock()
        self.sent: list[int] = []       # bytes per finished request
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:   # noqa: N802 (the stdlib's name)
                if self.path != "/file":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(server.size))
                self.end_headers()
                n = 0
                try:
                    while n < server.size:
                        chunk = block[:min(len(block), server.size - n)]
                        self.wfile.write(chunk)
                        n += len(chunk)
                finally:
                    with server.lock:
                        server.sent.append(n)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def requests_since(self, start: int) -> list[int]:
        """What the requests after the first `start` sent; waits a little for
        one, since the handler thread may note it after the guest is done."""
        for _ in range(100):
            with self.lock:
                if len(self.sent) > start:
                    return self.sent[start:]
            time.sleep(0.01)
        return []

    def count(self) -> int:
        with self.lock:
            return len(self.sent)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------
# Running one boot and watching its console


@dataclass
class Transfer:
    guest_s: float          # by the guest's clock
    wall_s: float           # by the host's wall clock
    cpu_s: float | None     # the emulator's host CPU time (all threads)


@dataclass
class Boot:
    error: str = ""
    transfers: dict[str, Transfer] = field(default_factory=dict)
    wall_s: float = 0.0     # the whole process
    to_first_mark_s: float = 0.0    # start-up, boot and module loading
    guest_boot_s: float = 0.0       # the guest's clock at the first marker


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of every thread of `pid` so far, from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            text = f.read()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may hold
    # spaces; utime and stime are fields 14 and 15 of the whole line.
    rest = text[text.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def run_boot(cmd: list[str], console: Path, timeout: float, poll_s: float,
             disk_mb: int) -> tuple[Boot, str]:
    """Runs one emulator process to completion, watching `console` (which the
    emulator writes) for marker lines and noting the host time and the
    process's CPU time when each appears. Returns the boot and the console."""
    boot = Boot()
    console.unlink(missing_ok=True)
    console.touch()
    err_path = console.with_suffix(".stderr")
    seen: dict[tuple[str, str], tuple[float, int, float | None]] = {}
    text = b""
    with open(err_path, "wb") as err_f, open(console, "rb") as con:
        start = time.perf_counter()
        try:
            # A session of its own, so that a timeout can end everything the
            # command started and nothing else.
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err_f,
                                    start_new_session=True)
        except OSError as e:
            boot.error = f"cannot start {cmd[0]}: {e}"
            return boot, ""
        pending = b""
        try:
            while True:
                done = proc.poll() is not None
                now = time.perf_counter()
                chunk = con.read()
                if chunk:
                    text += chunk
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    cpu = process_cpu_seconds(proc.pid) if not done else None
                    for line in lines:
                        m = MARK_RE.search(line.decode("utf-8", "replace"))
                        if m and (m[1], m[2]) not in seen:
                            seen[(m[1], m[2])] = (now, int(m[3]), cpu)
                if done:
                    break
                if now - start > timeout:
                    boot.error = f"did not exit within {timeout:g} s"
                    return boot, text.decode("utf-8", "replace")
                time.sleep(poll_s)
        finally:
            # On a timeout or Ctrl-C, end the emulator (and only it).
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        boot.wall_s = time.perf_counter() - start
        text += con.read()
    console_text = text.decode("utf-8", "replace")
    if proc.returncode != 0:
        last = err_path.read_text(encoding="utf-8", errors="replace")
        last_lines = last.strip().splitlines()
        boot.error = f"exit status {proc.returncode}" + (
            f": {last_lines[-1].strip()}" if last_lines else "")
        return boot, console_text

    # What the guest script said about itself.
    m = ERROR_RE.search(console_text)
    if m:
        boot.error = f"the guest script failed: {m[1].strip()}"
        return boot, console_text
    status = {m[1]: (int(m[2]), m[3].strip())
              for m in STATUS_RE.finditer(console_text)}
    for t in TRANSFERS:
        if t not in status:
            boot.error = f"no status line for {t} (console ended early?)"
            return boot, console_text
        rc, detail = status[t]
        if rc != 0:
            boot.error = f"{t} exited with status {rc}: {detail}"
            return boot, console_text
        # dd's "N+0 records in/out": every 1 MiB block was moved whole.
        if t != "net" and f"{disk_mb}+0 records" not in detail:
            boot.error = f"{t}: dd moved other than {disk_mb} MiB: {detail}"
            return boot, console_text
        b, e = seen.get(("begin", t)), seen.get(("end", t))
        if b is None or e is None:
            boot.error = f"no begin/end markers for {t}"
            return boot, console_text
        cpu = e[2] - b[2] if b[2] is not None and e[2] is not None else None
        boot.transfers[t] = Transfer((e[1] - b[1]) / 1e9, e[0] - b[0], cpu)
    boot.to_first_mark_s = seen[("begin", "write")][0] - start
    boot.guest_boot_s = seen[("begin", "write")][1] / 1e9
    if EXIT_PREFIX + "0" not in console_text:
        boot.error = f"no `{EXIT_PREFIX}0` line"
    return boot, console_text


# --------------------------------------------------------------------------
# The two command lines


def rewind_cmd(rewind: Path, guest: Guest, initrd: Path,
               args: argparse.Namespace, disk: Path,
               console: Path) -> list[str]:
    # persist: the guest's writes go into the image file and a FLUSH is an
    # fdatasync, as on QEMU; without it they go to an in-memory overlay.
    disk_spec = str(disk) if args.overlay else f"{disk},persist"
    return [str(rewind), "run", "--kernel", str(guest.kernel),
            "--initrd", str(initrd), "--firmware", str(guest.firmware),
            "--mem", args.mem, "--smp", str(args.smp), "--append", CMDLINE,
            "--disk", disk_spec, "--net", "user",
            "--serial", f"file:{console}"]


def qemu_cmd(qemu: str, guest: Guest, initrd: Path,
             args: argparse.Namespace, disk: Path,
             console: Path) -> list[str]:
    # -serial file:, not -nographic: QEMU drops queued serial output at exit
    # when its stdout is a pipe that is full. virtio-rng as well, because
    # Rewind adds one whenever there are virtio devices: the same devices,
    # the same modules loaded. snapshot=on is QEMU's counterpart of Rewind's
    # overlay: writes go to a temporary file, not the image.
    drive = f"file={disk},format=raw,if=none,id=d0" + (
        ",snapshot=on" if args.overlay else "")
    return [qemu, "-M", "virt", "-m", args.mem, "-smp", str(args.smp),
            "-bios", str(guest.firmware), "-kernel", str(guest.kernel),
            "-initrd", str(initrd), "-append", CMDLINE, "-no-reboot",
            "-drive", drive, "-device", "virtio-blk-device,drive=d0",
            "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0",
            "-device", "virtio-rng-device",
            "-display", "none", "-monitor", "none",
            "-serial", f"file:{console}"]


# --------------------------------------------------------------------------
# The disk image


FILL = bytes([0x5A]) * (1 << 20)


def reset_disk(disk: Path, mib: int) -> None:
    """A raw image of `mib` MiB, all 0x5a: rewritten before every boot, so
    that every boot starts from the same bytes and a write that did not reach
    the image is visible afterwards."""
    with open(disk, "wb") as f:
        for _ in range(mib):
            f.write(FILL)


def disk_is_zero(disk: Path, mib: int) -> bool:
    """Did the guest's `dd if=/dev/zero` reach the image?"""
    zero = bytes(1 << 20)
    with open(disk, "rb") as f:
        return all(f.read(1 << 20) == zero for _ in range(mib))


# --------------------------------------------------------------------------
# Reporting helpers


def mbps(nbytes: int, seconds: float | None) -> float | None:
    return nbytes / seconds / 1e6 if seconds and seconds > 0 else None


def fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def median(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if vals else None


# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(
        description="virtio-blk and virtio-net throughput inside Linux on "
                    "Rewind and QEMU, side by side.")
    ap.add_argument("--reps", type=int, default=3,
                    help="timed boots per emulator (default 3); every boot "
                         "runs all three transfers once")
    ap.add_argument("--disk-mb", type=int, default=DEFAULT_DISK_MB,
                    help="MiB written to and read from /dev/vda "
                         f"(default {DEFAULT_DISK_MB})")
    ap.add_argument("--net-mb", type=int, default=DEFAULT_NET_MB,
                    help="MiB the guest fetches with wget "
                         f"(default {DEFAULT_NET_MB})")
    ap.add_argument("--cached", action="store_true",
                    help="dd through the guest's page cache (write with "
                         "conv=fsync, read after dropping the cache) instead "
                         "of O_DIRECT")
    ap.add_argument("--overlay", action="store_true",
                    help="keep the image unchanged: Rewind without persist "
                         "(in-memory overlay), QEMU with snapshot=on")
    ap.add_argument("--mem", default="512M", help="guest RAM (default 512M)")
    ap.add_argument("--smp", type=int, default=1,
                    help="harts on both emulators (default 1)")
    ap.add_argument("--poll", type=float, default=0.005,
                    help="seconds between looks at the console file "
                         "(default 0.005; the wall times' resolution)")
    add_common_options(ap, keeps="the initramfs, disk image and consoles",
                       timeout_for="a boot",
                       verbose="print every transfer's times")
    args = ap.parse_args()

    if args.reps < 1:
        ap.error("--reps must be at least 1")
    if args.disk_mb < 1 or args.net_mb < 1:
        ap.error("--disk-mb and --net-mb must be at least 1")
    if args.smp < 1 or args.smp > 64:
        ap.error("--smp must be between 1 and 64")
    if not 0 < args.poll <= 1:
        ap.error("--poll must be between 0 and 1 second")
    if not re.fullmatch(r"\d+[KMG]?", args.mem):
        ap.error("--mem takes a size such as 512M or 1G")
    if qemu_missing(args.qemu):
        return 2

    return run_in_build_dir(args.build_dir, "virtio_io.",
                            lambda work: bench(args, work), [(BenchError, 2)])


@dataclass
class Series:
    boots: list[Boot] = field(default_factory=list)
    error: str = ""

    def med(self, transfer: str, what: str) -> float | None:
        if self.error or not self.boots:
            return None
        return median([getattr(b.transfers[transfer], what)
                       for b in self.boots])


def bench(args: argparse.Namespace, build_dir: Path) -> int:
    start_load = os.getloadavg()

    rewind, rewind_reason = rewind_binary(args.no_build, args.rewind)

    gdir = args.guest_dir or cache_dir() / GUEST_SUBDIR
    guest = find_guest(gdir, rewind, args.timeout)

    server = FileServer(args.net_mb << 20)
    try:
        write_flags, read_flags = CACHED_FLAGS if args.cached else DIRECT_FLAGS
        script = (GUEST_SCRIPT_TEXT.replace("@DISK_MB@", str(args.disk_mb))
                  .replace("@PORT@", str(server.port))
                  .replace("@WRITE_FLAGS@", write_flags)
                  .replace("@READ_FLAGS@", read_flags))
        script_path = build_dir / GUEST_SCRIPT
        script_path.write_text(script, encoding="utf-8")
        # The default initramfs (with its virtio modules) plus the script, as
        # a second cpio archive; built once, so every boot boots the same one.
        # /etc/rewind-modules is replaced by the virtio modules alone: later
        # files in the initramfs overwrite earlier ones.
        extra = {GUEST_SCRIPT: script_path}
        modules = virtio_module_list(gdir, guest.version)
        if modules is not None:
            (build_dir / "rewind-modules").write_bytes(modules)
            extra[MODULE_LIST] = build_dir / "rewind-modules"
        initrd = build_dir / "initramfs-virtio_io.cpio"
        build_initrd(guest.initrd, extra, initrd)
        disk = build_dir / "disk.img"
        console = build_dir / "console.txt"

        emus: list[tuple[str, Series, list[str]]] = [
            ("qemu", Series(), qemu_cmd(args.qemu, guest, initrd, args, disk,
                                        console))]
        rew = Series()
        if rewind is None:
            rew.error = rewind_reason
        else:
            emus.append(("rewind", rew, rewind_cmd(rewind, guest, initrd, args,
                                                   disk, console)))
        qemu = emus[0][1]

        # The host CPU time of this script and the emulators during the runs,
        # to tell how busy other processes kept the host meanwhile.
        host = HostCpu()
        t0 = os.times()
        busy0 = host.busy_seconds()
        wall0 = time.perf_counter()
        loads = [os.getloadavg()[0]]
        sizes = {"write": args.disk_mb << 20, "read": args.disk_mb << 20,
                 "net": args.net_mb << 20}

        # One untimed check boot of each first (warms the host's page cache,
        # shows that the whole script works), then --reps timed boots,
        # alternating QEMU and Rewind so that drift on the host affects both.
        for i in range(args.reps + 1):
            for emu, series, cmd in emus:
                if series.error:
                    continue
                label = "check boot" if i == 0 else f"boot {i}"
                log(f"{emu}: {label} ...")
                reset_disk(disk, args.disk_mb)
                first_request = server.count()
                boot, text = run_boot(cmd, console, args.timeout, args.poll,
                                      args.disk_mb)
                if not boot.error:
                    sent = server.requests_since(first_request)
                    if sent != [sizes["net"]]:
                        boot.error = (f"the HTTP server sent {sent} bytes, "
                                      f"not [{sizes['net']}]")
                if not boot.error and not args.overlay \
                        and not disk_is_zero(disk, args.disk_mb):
                    boot.error = ("the zeros the guest wrote are not in the "
                                  "image")
                if boot.error:
                    kept = build_dir / f"failed-{emu}-{i}.txt"
                    kept.write_text(text, encoding="utf-8")
                    series.error = boot.error if i == 0 else \
                        f"boot {i}: {boot.error}"
                    series.boots.clear()
                    log(f"{emu}: n/a: {boot.error}"
                        + (f" (console in {kept})" if args.build_dir else ""))
                    if emu == "qemu":
                        raise BenchError(f"QEMU {label} failed: {boot.error}; "
                                         "the benchmark has no reference")
                    continue
                if args.verbose or i == 0:
                    log(f"{emu}: {label}: " + ", ".join(
                        f"{t} {mbps(sizes[t], x.guest_s):.1f}/"
                        f"{mbps(sizes[t], x.wall_s):.1f} MB/s"
                        for t, x in boot.transfers.items())
                        + f" (guest/wall); process {boot.wall_s:.1f} s")
                if i > 0:
                    series.boots.append(boot)
            loads.append(os.getloadavg()[0])
    finally:
        server.close()

    busy1 = host.busy_seconds()
    t1 = os.times()
    ours = sum(t1[:4]) - sum(t0[:4])    # user, system, children's user, system
    wall = time.perf_counter() - wall0
    others = None
    if busy0 is not None and busy1 is not None and wall > 0:
        others = max(0.0, (busy1 - busy0 - ours) / wall)
    report(args, guest, qemu, rew, sizes, rewind_reason, start_load, loads,
           others, wall)
    return 0


def report(args: argparse.Namespace, guest: Guest, qemu: Series, rew: Series,
           sizes: dict[str, int], rewind_reason: str,
           start_load: tuple[float, float, float], loads: list[float],
           others: float | None, wall: float) -> None:
    ncpu = os.cpu_count() or 1
    qemu_version = first_line([args.qemu, "--version"])
    print(f"host CPU:  {host_cpu()}")
    print(f"host OS:   {platform.system()} {platform.release()}")
    print(f"QEMU:      {qemu_version}")
    print(f"rewind:    {args.rewind} ({rewind_revision()})"
          + (f" -- n/a: {rewind_reason}" if rewind_reason else ""))
    print(f"guest:     Linux {guest.version}; {args.mem} RAM, {args.smp} "
          f"hart(s); raw image of {args.disk_mb} MiB "
          + ("(overlay: Rewind in memory, QEMU snapshot=on)" if args.overlay
             else "(written in place: Rewind persist, QEMU default)")
          + f"; dd {'through the page cache' if args.cached else 'O_DIRECT'}")
    print(f"runs:      {args.reps} timed boots per emulator, after one check "
          f"boot each; {wall / 60:.1f} minutes in all")
    print(f"host load: load average {start_load[0]:.2f} {start_load[1]:.2f} "
          f"{start_load[2]:.2f} at the start; 1-minute {min(loads):.2f} to "
          f"{max(loads):.2f} during the runs")
    if others is not None:
        print(f"           other processes kept {others:.2f} of {ncpu} CPUs "
              "busy on average during the runs")
    if start_load[0] > max(1.0, 0.25 * ncpu) or \
            (others is not None and others > 0.25):
        print("WARNING:   the host was busy with other work; wall times are "
              "inflated and noisy")
    print()

    what = {"write": f"write {args.disk_mb} MiB to /dev/vda",
            "read": f"read {args.disk_mb} MiB from /dev/vda",
            "net": f"wget {args.net_mb} MiB from the host"}
    print("Median MB/s (10^6 bytes/s) by the host's wall clock, the guest's "
          "own clock and the emulator's host CPU time; Rewind/QEMU is the "
          "wall-clock ratio (above 1: Rewind is faster):")
    rows = []
    for t in TRANSFERS:
        n = sizes[t]
        qw, rw = mbps(n, qemu.med(t, "wall_s")), mbps(n, rew.med(t, "wall_s"))
        rows.append([
            t, what[t],
            fmt(qw), fmt(rw),
            fmt(qw and rw and rw / qw, 2),
            fmt(mbps(n, qemu.med(t, "guest_s"))),
            fmt(mbps(n, rew.med(t, "guest_s"))),
            fmt(mbps(n, qemu.med(t, "cpu_s"))),
            fmt(mbps(n, rew.med(t, "cpu_s"))),
        ])
    print(table(["transfer", "what", "QEMU wall", "Rewind wall",
                 "Rewind/QEMU", "QEMU guest", "Rewind guest", "QEMU CPU",
                 "Rewind CPU"], rows, left=2))
    for emu, s in (("QEMU", qemu), ("Rewind", rew)):
        if s.error:
            print(f"* {emu} n/a: {s.error}")
    print()
    print("Median seconds (the same runs):")
    rows = []
    for t in TRANSFERS:
        rows.append([t, fmt(qemu.med(t, "wall_s"), 2),
                     fmt(rew.med(t, "wall_s"), 2),
                     fmt(qemu.med(t, "guest_s"), 2),
                     fmt(rew.med(t, "guest_s"), 2)])

    def boot_med(s: Series, attr: str) -> float | None:
        return None if s.error else median([getattr(b, attr) for b in s.boots])

    rows.append(["boot", fmt(boot_med(qemu, "to_first_mark_s"), 2),
                 fmt(boot_med(rew, "to_first_mark_s"), 2),
                 fmt(boot_med(qemu, "guest_boot_s"), 2),
                 fmt(boot_med(rew, "guest_boot_s"), 2)])
    rows.append(["process", fmt(boot_med(qemu, "wall_s"), 2),
                 fmt(boot_med(rew, "wall_s"), 2), "-", "-"])
    print(table(["", "QEMU wall s", "Rewind wall s", "QEMU guest s",
                 "Rewind guest s"], rows))
    print("(boot: process start to the first marker -- firmware, kernel, "
          "virtio modules, /init; process: the whole boot)")

    if args.json:
        def dump(s: Series) -> dict:
            return {"error": s.error or None, "boots": [{
                "wall_s": b.wall_s, "to_first_mark_s": b.to_first_mark_s,
                "guest_boot_s": b.guest_boot_s,
                "transfers": {t: vars(x) for t, x in b.transfers.items()},
            } for b in s.boots]}
        data = {
            "host_cpu": host_cpu(),
            "qemu_version": qemu_version,
            "rewind_revision": rewind_revision(),
            "kernel_version": guest.version,
            "mem": args.mem, "smp": args.smp, "reps": args.reps,
            "disk_mib": args.disk_mb, "net_mib": args.net_mb,
            "cached": args.cached, "overlay": args.overlay,
            "load_average_start": list(start_load),
            "load_average_during": loads,
            "other_processes_cpus": others,
            "qemu": dump(qemu), "rewind": dump(rew),
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n",
                             encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
