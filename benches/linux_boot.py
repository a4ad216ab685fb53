#!/usr/bin/env python3
"""Linux guests on Rewind and on QEMU, side by side: boot and a CPU workload.

Runs Debian's riscv64 kernel with Rewind's default busybox initramfs (the
guest `rewind run` fetches and caches) on

    target/release/rewind run --kernel Image --initrd cpio --firmware fw_dynamic.bin
        --mem 512M --smp N --append "console=ttyS0 rewind.modules=no rewind.run=PROGRAM"
    qemu-system-riscv64 -M virt -m 512M -smp N -bios fw_dynamic.bin
        -kernel Image -initrd cpio -append "..." -display none -monitor none
        -serial file:OUT

and prints, for each workload and hart count, the median wall time of the
whole process on each and the ratio QEMU / Rewind (above 1: Rewind is
faster). Workloads:

  boot     the kernel boots, /init runs /bin/true, prints
           `Rewind: exit status 0` and powers the machine off;
  cpu      the same, running a statically linked C program (integer,
           memory and floating-point kernels) in one thread;
  cpu-smp  the same program with one thread per hart (only with 2+ harts);
  int, mem, fp  one kernel of the program each, one thread (not run by
           default; they show where the time of `cpu` goes).

The C program is embedded below (WORKLOAD_C); `--workload-src FILE` builds
another one instead. It is cross-compiled with
`riscv64-linux-gnu-gcc -static -O2` and added to the default initramfs as a
second newc cpio archive appended to it (Linux unpacks concatenated archives).
What it prints must be identical on both emulators, or that row is n/a.

After /init starts, the kernel still has asynchronous boot work to do
(crypto self-tests that spawn modprobe and the like, about 0.66 billion guest
instructions): `boot` powers off before it runs, but in a workload case it
runs during the program. So with `--settle S` (default 5; 0: off) every case
also runs "settled": /init runs a script `sleep S; exec PROGRAM` from the
workload initramfs (`sleep S; exec /bin/true` for boot), and a table gives
the program alone as the settled workload's median minus the settled boot's.
The sleep costs Rewind nothing (an idle guest skips ahead in virtual time)
and QEMU the same real seconds on both sides, so it cancels out. The other
tables and the verdict line are over the unsettled cases only.

The moonshot table puts the same program, built with the host's
`gcc -static -O2` (plus -mfma on x86-64, as the riscv64 build fuses
multiply-adds) and the same -D flags and run natively, next to the program
alone on each emulator (settled, or with --settle 0 its median minus the
boot median at the same hart count); the goal is Rewind within 3x of native,
and the plain `cpu` row on the fewest harts is the headline. Natively too the
output must equal the guest's, or the row is n/a; cpu-smp runs pinned with
taskset to as many host CPUs as the guest has harts. `--no-native` skips it.

Python 3 standard library only. See benches/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
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

from benchlib import (GUEST_SUBDIR, add_common_options, first_line, host_cpu,
                      log, qemu_missing, rewind_binary, run_in_build_dir,
                      table)

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent

EXIT_PREFIX = "Rewind: exit status "         # crates/guest/src/init.rs
# rewind_guest::DEFAULT_CMDLINE, and no kernel modules: /init loads the
# initramfs's virtio modules when the device tree has virtio-mmio nodes, which
# QEMU's virt always has; the benchmark uses no virtio device on either side.
BASE_CMDLINE = "console=ttyS0 rewind.modules=no"
CROSS_GCC = "riscv64-linux-gnu-gcc"
CFLAGS = ["-static", "-O2"]

# The embedded workload's default size: about 3.5 s of QEMU 7.2 TCG on one
# hart of a 2020s x86 server core, after a boot of about 2.5 s. `--scale`
# multiplies it.
DEFAULT_SCALE = 1

# Workload -> (the program /init runs, its -DTHREADS, its -DONLY). The last
# three run one kernel of the workload each, to see where the time goes; they
# are not in the default set.
WORKLOADS = {
    "boot": ("/bin/true", None, None),
    "cpu": ("/workload", 1, -1),
    "cpu-smp": ("/workload-smp", 0, -1),
    "int": ("/workload-int", 1, 0),
    "mem": ("/workload-mem", 1, 1),
    "fp": ("/workload-fp", 1, 2),
}
DEFAULT_WORKLOADS = ("boot", "cpu", "cpu-smp")

KERNEL_LOG_RE = re.compile(r"^\[\s*\d+\.\d+\]")


class BenchError(Exception):
    """A failure of the benchmark itself (toolchain, QEMU, guest files)."""


# --------------------------------------------------------------------------
# The workload program


WORKLOAD_C = r"""
/* A CPU workload for benches/linux_boot.py: integer, memory and floating-point
 * kernels in a statically linked Linux program. Each kernel is split into
 * UNITS units of work with their own seeds; thread t runs units t, t+T, ...,
 * and the per-unit checksums are combined in unit order, so the output is the
 * same whatever the thread count. Built with
 *   riscv64-linux-gnu-gcc -static -O2 -DSCALE=<n> -DTHREADS=<n> -o w w.c -lm
 * THREADS=0 means one thread per online CPU; -DONLY=0, 1 or 2 runs only the
 * integer, memory or floating-point kernel. Prints one line per kernel,
 * "workload: <kernel> <hex checksum>", then "workload: done". */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <math.h>

#ifndef SCALE
#define SCALE 1
#endif
#ifndef THREADS
#define THREADS 1
#endif
#ifndef ONLY
#define ONLY -1
#endif

#define UNITS 8
#define KERNELS 3

typedef uint64_t u64;
typedef uint32_t u32;

static u64 mix(u64 h, u64 v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdULL;
}

static u64 xorshift(u64 *s)
{
    u64 x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ---------------------------------------------------------------- integer */

#define INT_KEYS (1 << 15)
#define INT_REPS (24 * SCALE)
#define SIEVE_N 400000
#define POW_N (80000 * SCALE)

static u32 crc_table[256];

static void sort_u32(u32 *a, long lo, long hi)
{
    while (hi - lo > 16) {
        u32 p = a[lo + (hi - lo) / 2];
        long i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p)
                i++;
            while (a[j] > p)
                j--;
            if (i <= j) {
                u32 t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        if (j - lo < hi - i) {
            sort_u32(a, lo, j);
            lo = i;
        } else {
            sort_u32(a, i, hi);
            hi = j;
        }
    }
    for (long i = lo + 1; i <= hi; i++) {
        u32 v = a[i];
        long j = i - 1;
        while (j >= lo && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static u64 powmod(u64 b, u64 e, u64 m)
{
    u64 r = 1 % m;
    b %= m;
    while (e) {
        if (e & 1)
            r = r * b % m;
        b = b * b % m;
        e >>= 1;
    }
    return r;
}

struct scratch {
    u32 *keys;
    unsigned char *sieve;
    u64 *a, *b;
    double *ma, *mb, *mc;
};

static u64 int_unit(int u, struct scratch *s)
{
    u64 seed = 0x9e3779b97f4a7c15ULL * (u + 1) | 1, h = u;
    for (int rep = 0; rep < INT_REPS; rep++) {
        for (long i = 0; i < INT_KEYS; i++)
            s->keys[i] = (u32)xorshift(&seed);
        sort_u32(s->keys, 0, INT_KEYS - 1);
        for (long i = 1; i < INT_KEYS; i++)
            if (s->keys[i - 1] > s->keys[i])
                h = mix(h, i);          /* never: a sorting bug changes the sum */
        u32 crc = ~0u;
        const unsigned char *p = (const unsigned char *)s->keys;
        for (long i = 0; i < INT_KEYS * 4L; i++)
            crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
        h = mix(h, ~crc);
        h = mix(h, s->keys[INT_KEYS / 3]);
    }
    /* Sieve of Eratosthenes over bytes. */
    for (int rep = 0; rep < 4 * SCALE; rep++) {
        long n = SIEVE_N + u * 1000 + rep, count = 0;
        memset(s->sieve, 1, n);
        for (long i = 2; i * i < n; i++)
            if (s->sieve[i])
                for (long j = i * i; j < n; j += i)
                    s->sieve[j] = 0;
        for (long i = 2; i < n; i++)
            count += s->sieve[i];
        h = mix(h, count);
    }
    /* Division-heavy: modular exponentiation. */
    u64 m = 1000000007ULL + 2 * u, acc = 0;
    for (long i = 1; i <= POW_N; i++)
        acc += powmod(i, i ^ 0x5555, m);
    return mix(h, acc);
}

/* ----------------------------------------------------------------- memory */

#define MEM_WORDS (1 << 19)             /* 4 MiB per array */
#define MEM_PASSES (2 * SCALE)
#define CHASE_STEPS (150000 * SCALE)

static u64 mem_unit(int u, struct scratch *s)
{
    u64 *a = s->a, *b = s->b, seed = 0xdeadbeefcafef00dULL ^ ((u64)u << 32), h = u;
    for (long i = 0; i < MEM_WORDS; i++)
        a[i] = i * 0x10001 + u;
    /* Streams: copy, scale, add (STREAM-like, 64-bit integers). */
    for (int p = 0; p < MEM_PASSES; p++) {
        memcpy(b, a, MEM_WORDS * sizeof(u64));
        for (long i = 0; i < MEM_WORDS; i++)
            a[i] = b[i] * 3 + (u64)p;
        for (long i = 0; i < MEM_WORDS; i += 2) {
            a[i] += b[i + 1];
            a[i + 1] ^= b[i];
        }
        u64 sum = 0;
        for (long i = 0; i < MEM_WORDS; i += 8)
            sum += a[i] ^ b[i + 7];
        h = mix(h, sum);
    }
    /* Pointer chasing through one random cycle over the 4 MiB array
     * (Sattolo's algorithm), so nearly every step misses caches and TLBs. */
    for (long i = 0; i < MEM_WORDS; i++)
        b[i] = i;
    for (long i = MEM_WORDS - 1; i > 0; i--) {
        long j = xorshift(&seed) % i;
        u64 t = b[i];
        b[i] = b[j];
        b[j] = t;
    }
    u64 at = u;
    for (long i = 0; i < CHASE_STEPS; i++) {
        at = b[at];
        a[at] += i;                     /* and a dependent store */
    }
    return mix(mix(h, at), a[u]);
}

/* --------------------------------------------------------- floating point */

#define MAT_N 64
#define MAT_REPS (6 * SCALE)
#define NBODY_STEPS (60000 * SCALE)
#define MANDEL_SIZE 200

struct body {
    double x, y, z, vx, vy, vz, m;
};

static double nbody(int u)
{
    struct body bs[5] = {
        {0, 0, 0, 0, 0, 0, 39.47841760435743},
        {4.84, -1.16, -0.10, 0.606, 2.81, -0.02, 0.037},
        {8.34, 4.12, -0.40, -1.01, 1.82, 0.008, 0.011},
        {12.89, -15.11, -0.22, 1.08, 0.868, -0.01, 0.0017},
        {15.37, -25.91, 0.179, 0.979, 0.594, -0.034, 0.002},
    };
    bs[1].x += u * 0.01;
    const double dt = 0.01;
    for (long s = 0; s < NBODY_STEPS; s++) {
        for (int i = 0; i < 5; i++)
            for (int j = i + 1; j < 5; j++) {
                double dx = bs[i].x - bs[j].x, dy = bs[i].y - bs[j].y, dz = bs[i].z - bs[j].z;
                double d2 = dx * dx + dy * dy + dz * dz;
                double mag = dt / (d2 * sqrt(d2));
                bs[i].vx -= dx * bs[j].m * mag;
                bs[i].vy -= dy * bs[j].m * mag;
                bs[i].vz -= dz * bs[j].m * mag;
                bs[j].vx += dx * bs[i].m * mag;
                bs[j].vy += dy * bs[i].m * mag;
                bs[j].vz += dz * bs[i].m * mag;
            }
        for (int i = 0; i < 5; i++) {
            bs[i].x += dt * bs[i].vx;
            bs[i].y += dt * bs[i].vy;
            bs[i].z += dt * bs[i].vz;
        }
    }
    double e = 0;
    for (int i = 0; i < 5; i++)
        e += 0.5 * bs[i].m * (bs[i].vx * bs[i].vx + bs[i].vy * bs[i].vy + bs[i].vz * bs[i].vz);
    return e;
}

static u64 mandel(int u)
{
    u64 total = 0;
    for (int py = 0; py < MANDEL_SIZE; py++)
        for (int px = 0; px < MANDEL_SIZE; px++) {
            float cx = -2.0f + 2.5f * px / MANDEL_SIZE + u * 1e-3f;
            float cy = -1.25f + 2.5f * py / MANDEL_SIZE;
            float x = 0, y = 0;
            int k = 0;
            while (k < 64 && x * x + y * y <= 4.0f) {
                float t = x * x - y * y + cx;
                y = 2.0f * x * y + cy;
                x = t;
                k++;
            }
            total += k;
        }
    return total;
}

static u64 bits(double d)
{
    u64 v;
    memcpy(&v, &d, sizeof v);
    return v;
}

static u64 fp_unit(int u, struct scratch *s)
{
    u64 h = u;
    double *A = s->ma, *B = s->mb, *C = s->mc;
    for (int i = 0; i < MAT_N * MAT_N; i++) {
        A[i] = (double)((i * 7 + u) % 13) / 7.0 - 0.9;
        B[i] = (double)((i * 5 + 3 * u) % 11) / 3.0 - 1.7;
    }
    for (int rep = 0; rep < MAT_REPS; rep++) {
        for (int i = 0; i < MAT_N; i++)
            for (int j = 0; j < MAT_N; j++) {
                double sum = 0;
                for (int k = 0; k < MAT_N; k++)
                    sum += A[i * MAT_N + k] * B[k * MAT_N + j];
                C[i * MAT_N + j] = sum;
            }
        double norm = 0;
        for (int i = 0; i < MAT_N * MAT_N; i++) {
            norm += C[i] * C[i];
            A[i] = C[i] / (1.0 + fabs(C[i]));   /* feed back, bounded */
        }
        h = mix(h, bits(sqrt(norm)));
    }
    h = mix(h, bits(nbody(u)));
    for (int rep = 0; rep < SCALE; rep++)
        h = mix(h, mandel(u + rep));
    return h;
}

/* ---------------------------------------------------------------- driver */

static u64 (*const kernels[KERNELS])(int, struct scratch *) = {int_unit, mem_unit, fp_unit};
static const char *const names[KERNELS] = {"int", "mem", "fp"};
static u64 results[KERNELS][UNITS];
static int nthreads;

static void *worker(void *arg)
{
    long t = (long)arg;
    struct scratch s;
    s.keys = malloc(INT_KEYS * sizeof(u32));
    s.sieve = malloc(SIEVE_N + UNITS * 1000 + 4 * SCALE);
    s.a = malloc(MEM_WORDS * sizeof(u64));
    s.b = malloc(MEM_WORDS * sizeof(u64));
    s.ma = malloc(3 * MAT_N * MAT_N * sizeof(double));
    if (!s.keys || !s.sieve || !s.a || !s.b || !s.ma) {
        fprintf(stderr, "workload: out of memory\n");
        exit(2);
    }
    s.mb = s.ma + MAT_N * MAT_N;
    s.mc = s.mb + MAT_N * MAT_N;
    for (int k = 0; k < KERNELS; k++)
        if (ONLY < 0 || k == ONLY)
            for (int u = t; u < UNITS; u += nthreads)
                results[k][u] = kernels[k](u, &s);
    free(s.keys);
    free(s.sieve);
    free(s.a);
    free(s.b);
    free(s.ma);
    return NULL;
}

int main(void)
{
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
    nthreads = THREADS > 0 ? THREADS : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > UNITS)
        nthreads = UNITS;
    pthread_t tids[UNITS] = {0};
    for (long t = 1; t < nthreads; t++)
        if (pthread_create(&tids[t], NULL, worker, (void *)t) != 0) {
            fprintf(stderr, "workload: pthread_create failed\n");
            return 2;
        }
    worker((void *)0);
    for (long t = 1; t < nthreads; t++)
        pthread_join(tids[t], NULL);
    for (int k = 0; k < KERNELS; k++) {
        if (ONLY >= 0 && k != ONLY)
            continue;
        u64 h = k;
        for (int u = 0; u < UNITS; u++)
            h = mix(h, results[k][u]);
        printf("workload: %s %016llx\n", names[k], (unsigned long long)h);
    }
    printf("workload: done\n");
    /* Wait until the console has sent it all: the default /init runs this
     * program as a session leader (setsid), and when a session leader exits
     * the kernel hangs up its terminal, discarding output not yet sent. */
    fflush(stdout);
    tcdrain(STDOUT_FILENO);
    return 0;
}
"""


def workload_source(src: Path | None, build_dir: Path) -> Path:
    """The C file to build: `src`, or the embedded program written out."""
    if src is not None:
        return src
    out = build_dir / "workload.c"
    out.write_text(WORKLOAD_C.lstrip(), encoding="utf-8")
    return out


def compile_cmd(cc: str, extra: list[str], src: Path, exe: Path,
                workload: str, scale: int, embedded: bool) -> list[str]:
    """The one compile command of every build, guest or native, so that the
    two differ only in the compiler (and `extra`). Another program than the
    embedded one is built as it is, without -D."""
    _, threads, only = WORKLOADS[workload]
    defines = [f"-DSCALE={scale}", f"-DTHREADS={threads}",
               f"-DONLY={only}"] if embedded else []
    return [cc, *CFLAGS, *extra, *defines, "-o", str(exe), str(src),
            "-lm", "-lpthread"]


def build_workloads(src: Path | None, scale: int, workloads: list[str],
                    build_dir: Path) -> dict[str, Path]:
    """Cross-compile the programs the workloads run; guest name -> file."""
    embedded = src is None
    src = workload_source(src, build_dir)
    out = {}
    for w in workloads:
        guest_path, threads, _ = WORKLOADS[w]
        if threads is None:
            continue
        name = guest_path.lstrip("/")
        exe = build_dir / name
        cmd = compile_cmd(CROSS_GCC, [], src, exe, w, scale, embedded)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except FileNotFoundError as e:
            raise BenchError(f"{CROSS_GCC} is not installed (Debian package "
                             "gcc-riscv64-linux-gnu)") from e
        if p.returncode != 0:
            raise BenchError(f"building {src.name} failed:\n{p.stderr.strip()}")
        out[name] = exe
    return out


# --------------------------------------------------------------------------
# The guest: kernel, firmware, initramfs


@dataclass
class Guest:
    kernel: Path
    firmware: Path
    initrd: Path           # the default initramfs, unchanged
    version: str


def cache_dir() -> Path:
    """Where `rewind run` caches its default guest (crates/guest/src/lib.rs)."""
    env = {k: os.environ.get(k, "") for k in
           ("REWIND_CACHE", "XDG_CACHE_HOME", "HOME")}
    if env["REWIND_CACHE"]:
        return Path(env["REWIND_CACHE"])
    if env["XDG_CACHE_HOME"] and os.path.isabs(env["XDG_CACHE_HOME"]):
        return Path(env["XDG_CACHE_HOME"]) / "rewind"
    if env["HOME"]:
        return Path(env["HOME"]) / ".cache" / "rewind"
    return Path(tempfile.gettempdir()) / "rewind-cache"


def read_manifest(gdir: Path) -> dict[str, str] | None:
    try:
        text = (gdir / "manifest.txt").read_text(encoding="utf-8")
    except OSError:
        return None
    return dict(line.split("=", 1) for line in text.splitlines()
                if "=" in line and not line.startswith("#"))


def find_guest(gdir: Path, rewind: Path | None, timeout: float) -> Guest:
    """The cached default guest; boots it once with rewind to fetch it."""
    manifest = read_manifest(gdir)
    if manifest is None:
        if gdir.name != GUEST_SUBDIR:
            raise BenchError(f"no guest in {gdir} (no manifest.txt)")
        if rewind is None:
            raise BenchError(f"no guest in {gdir} (no manifest.txt), and no "
                             "rewind binary to fetch one with")
        print(f"fetching the default guest into {gdir.parent} with "
              "`rewind run` ...", file=sys.stderr, flush=True)
        env = dict(os.environ, REWIND_CACHE=str(gdir.parent))
        r = run_once([str(rewind), "run", "--append",
                      f"{BASE_CMDLINE} rewind.run=/bin/true"],
                     timeout, stdout_path=None, env=env)
        manifest = read_manifest(gdir)
        if manifest is None:
            raise BenchError(f"`rewind run` did not leave a guest in {gdir}: "
                             f"{r.reason or 'no manifest.txt'}")
    try:
        guest = Guest(gdir / manifest["kernel"], gdir / manifest["firmware"],
                      gdir / "initramfs.cpio", manifest.get("kernel_version", "?"))
    except KeyError as e:
        raise BenchError(f"{gdir / 'manifest.txt'} has no {e} line") from e
    for p in (guest.kernel, guest.firmware, guest.initrd):
        if not p.is_file():
            raise BenchError(f"{p} is missing; delete {gdir} to fetch it again")
    return guest


def newc_member(name: str, mode: int, data: bytes, ino: int) -> bytes:
    """One entry of a newc ("070701") cpio archive, padded to 4 bytes."""
    namez = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(namez), 0]
    out = b"070701" + "".join(f"{v:08x}" for v in fields).encode() + namez
    out += b"\0" * (-len(out) % 4) + data
    return out + b"\0" * (-len(out) % 4)


def newc_archive(files: list[tuple[str, bytes, int]]) -> bytes:
    """A newc archive of regular files (path without leading /, data, perms)."""
    out = b"".join(newc_member(name, 0o100000 | perm, data, 0x7e000 + i)
                   for i, (name, data, perm) in enumerate(files))
    return out + newc_member("TRAILER!!!", 0, b"", 0)


def settle_script(program: str, seconds: float,
                  build_dir: Path) -> tuple[str, Path]:
    """A shell script for /init to run in place of `program`: `sleep
    seconds`, then exec the program. Returns its guest name (no leading /,
    e.g. settled-workload-fp for /workload-fp) and the file written in
    build_dir."""
    name = "settled-" + program.rsplit("/", 1)[-1]
    path = build_dir / name
    path.write_text(f"#!/bin/sh\nsleep {fmt_seconds(seconds)}\n"
                    f"exec {program}\n", encoding="utf-8")
    return name, path


def fmt_seconds(seconds: float) -> str:
    """Seconds as busybox sleep takes them: 5, 0.5 (never 5e-06)."""
    return f"{seconds:.6f}".rstrip("0").rstrip(".")


def build_initrd(base: Path, programs: dict[str, Path], out: Path) -> None:
    """The default initramfs with a second archive holding the programs
    appended; the kernel unpacks both (the second starts 4-byte aligned, and
    zero padding between archives is skipped)."""
    data = base.read_bytes()
    data += b"\0" * (-len(data) % 512)
    files = [(name, path.read_bytes(), 0o755) for name, path in programs.items()]
    out.write_bytes(data + newc_archive(files))


# --------------------------------------------------------------------------
# Running


@dataclass
class RunResult:
    ok: bool
    seconds: float
    cpu_seconds: float = 0.0
    console: str = ""
    reason: str = ""


def run_once(cmd: list[str], timeout: float, stdout_path: Path | None,
             env: dict[str, str] | None = None) -> RunResult:
    """Run `cmd` to completion with stdin from /dev/null and stdout into
    `stdout_path` (a file, never a pipe that could fill); wall time covers the
    whole process."""
    out_f = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    try:
        start = time.perf_counter()
        try:
            # A session of its own, so that a timeout can end everything the
            # command started and nothing else.
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out_f,
                                    stderr=subprocess.PIPE, env=env,
                                    start_new_session=True)
        except OSError as e:
            return RunResult(False, 0.0, reason=f"cannot start {cmd[0]}: {e}")
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            return RunResult(False, timeout,
                             reason=f"did not exit within {timeout:g} s")
        seconds = time.perf_counter() - start
    finally:
        if stdout_path:
            out_f.close()
    if proc.returncode != 0:
        last = err.decode("utf-8", "replace").strip().splitlines()
        tail = f": {last[-1].strip()}" if last else ""
        return RunResult(False, seconds,
                         reason=f"exit status {proc.returncode}{tail}")
    return RunResult(True, seconds)


def timed_run(cmd: list[str], timeout: float, console_path: Path,
              qemu_serial: bool) -> RunResult:
    """run_once plus the process's CPU time and the guest console text."""
    console_path.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # QEMU writes the console to -serial file:, Rewind to its stdout.
    r = run_once(cmd, timeout, None if qemu_serial else console_path)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    r.cpu_seconds = ((after.ru_utime - before.ru_utime)
                     + (after.ru_stime - before.ru_stime))
    try:
        r.console = console_path.read_bytes().decode("utf-8", "replace")
    except OSError:
        r.console = ""
    return r


def rewind_cmd(rewind: Path, guest: Guest, initrd: Path, smp: int, mem: str,
               append: str) -> list[str]:
    return [str(rewind), "run", "--kernel", str(guest.kernel),
            "--initrd", str(initrd), "--firmware", str(guest.firmware),
            "--mem", mem, "--smp", str(smp), "--append", append]


def qemu_cmd(qemu: str, guest: Guest, initrd: Path, smp: int, mem: str,
             append: str, serial: Path) -> list[str]:
    # -serial file:, not -nographic: QEMU drops queued serial output at exit
    # when its stdout is a pipe that is full.
    return [qemu, "-M", "virt", "-m", mem, "-smp", str(smp),
            "-bios", str(guest.firmware), "-kernel", str(guest.kernel),
            "-initrd", str(initrd), "-append", append,
            "-display", "none", "-monitor", "none", "-serial", f"file:{serial}"]


def program_output(console: str) -> tuple[str | None, list[str]]:
    """(error, the lines the program printed) from a console transcript: the
    lines between `Run /init` and `Rewind: exit status`, without kernel log
    lines."""
    lines = [ln.rstrip("\r") for ln in console.split("\n")]
    status_at = None
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith(EXIT_PREFIX):
            status_at = i
            break
    if status_at is None:
        shown = next((ln for ln in reversed(lines) if ln.strip()), "")
        return (f"no `{EXIT_PREFIX.strip()}` line (last line: "
                f"{shown[:80]!r})"), []
    status = lines[status_at][len(EXIT_PREFIX):].strip()
    if status != "0":
        return f"the program's exit status was {status}", []
    start = 0
    for i in range(status_at):
        if "Run /init as init process" in lines[i]:
            start = i + 1
    body = [ln for ln in lines[start:status_at]
            if ln.strip() and not KERNEL_LOG_RE.match(ln)]
    return None, body


@dataclass
class Series:
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    error: str = ""

    def median(self) -> float | None:
        return statistics.median(self.times) if self.times and not self.error \
            else None

    def median_cpu(self) -> float | None:
        return statistics.median(self.cpu) if self.cpu and not self.error \
            else None


class HostCpu:
    """CPU time the whole host spent busy, from /proc/stat, so that what other
    processes used during the runs can be told apart from ours."""

    def __init__(self) -> None:
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def busy_seconds(self) -> float | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal (guest* are in user)
        busy = sum(fields[:8]) - fields[3] - fields[4]
        return busy / self.hz


# --------------------------------------------------------------------------
# Native: the same program built for the host, the moonshot's yardstick

HOST_GCC = "gcc"
# The moonshot: the program alone on Rewind within this factor of native.
MOONSHOT = 3.0


def native_extra_cflags() -> tuple[list[str], str]:
    """Flags the native build needs on top of the guest's, and why. RV64GC
    has fused multiply-add and GCC fuses a*b+c into it at -O2 (GNU C's default
    -ffp-contract=fast), so the guest's `fp` checksum depends on it; x86-64's
    baseline has no FMA, and without -mfma the native `fp` line differs
    (checked: 7338aba5... natively vs 4ad37312... in the guest, with int and
    mem equal). With -mfma GCC fuses the same operations and every line is
    equal; the time is within noise of the build without it."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return [], ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f
                          if ln.startswith("flags")), [])
    except OSError:
        flags = []
    if "fma" not in flags:
        return [], ("the host CPU has no FMA, so the fp checksum will likely "
                    "differ from the guest's fused multiply-adds")
    return ["-mfma"], ""


@dataclass
class NativeCase:
    workload: str
    cpus: int | None        # cpu-smp: pinned to this many host CPUs
    cmd: list[str] = field(default_factory=list)
    series: Series = field(default_factory=Series)
    output: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.workload} native" + (
            f" cpus={self.cpus}" if self.cpus is not None else "")


def pin_prefix(cpus: int) -> tuple[list[str], str]:
    """`taskset -c` onto the first `cpus` CPUs this process may use, so that
    cpu-smp natively gets as many CPUs as the guest has harts; or why not."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = list(range(os.cpu_count() or 1))
    if len(allowed) < cpus:
        return [], (f"needs {cpus} host CPUs to match the harts, "
                    f"this process may use {len(allowed)}")
    if shutil.which("taskset") is None:
        return [], "taskset is not installed (util-linux), cannot pin to CPUs"
    return ["taskset", "-c", ",".join(map(str, allowed[:cpus]))], ""


def native_cases(args: argparse.Namespace, cases: list[Case],
                 build_dir: Path) -> list[NativeCase]:
    """Build the program natively for each CPU workload that ran, with the
    guest build's command but HOST_GCC; a failed build makes that case n/a.
    cpu-smp gets one case per hart count (pinned to as many CPUs); the others
    run one thread, so one case serves every hart count."""
    embedded = args.workload_src is None
    src = workload_source(args.workload_src, build_dir)
    extra, _ = native_extra_cflags()
    out: list[NativeCase] = []
    built: dict[str, tuple[Path, str]] = {}
    for c in cases:
        if c.workload == "boot" or c.settled:
            continue
        cpus = c.smp if c.workload == "cpu-smp" else None
        if any(n.workload == c.workload and n.cpus == cpus for n in out):
            continue
        n = NativeCase(c.workload, cpus)
        out.append(n)
        if c.workload not in built:
            exe = build_dir / f"native-{WORKLOADS[c.workload][0].lstrip('/')}"
            cmd = compile_cmd(HOST_GCC, extra, src, exe, c.workload,
                              args.scale, embedded)
            built[c.workload] = (exe, compile_error(cmd))
        exe, err = built[c.workload]
        prefix = []
        if not err and cpus is not None:
            prefix, err = pin_prefix(cpus)
        n.series.error = err
        n.cmd = [*prefix, str(exe)]
    return out


def compile_error(cmd: list[str]) -> str:
    """Run a native compile; '' or why it failed, in one line."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return f"{cmd[0]} is not installed"
    if p.returncode == 0:
        return ""
    lines = [ln.strip() for ln in p.stderr.splitlines() if ln.strip()]
    # A missing libc.a or libm.a shows up as the linker's "cannot find -lm",
    # followed by collect2's uninformative "error: ld returned 1".
    first = next((ln for ln in lines if "cannot find" in ln), None) \
        or next((ln for ln in lines if "error" in ln
                 and not ln.startswith("collect2")), None) \
        or (lines[-1] if lines else "no output")
    return f"the native build with {cmd[0]} failed ({first})"


def native_reference(n: NativeCase, cases: list[Case]) -> list[str] | None:
    """What the program printed in QEMU's check run of that workload (at the
    same hart count for cpu-smp), if QEMU's runs all succeeded."""
    for c in cases:
        if c.workload == n.workload and c.output and not c.qemu.error \
                and (n.cpus is None or c.smp == n.cpus):
            return c.output
    return None


def run_native(n: NativeCase, args: argparse.Namespace, cases: list[Case],
               console: Path) -> float:
    """An untimed check run, then --runs timed runs, each required to print
    exactly the guest's output: a fast wrong answer is not a result. Returns
    the CPU seconds spent, for the estimate of other processes' load."""
    spent = 0.0
    if n.series.error:
        log(f"{n.label}: n/a: {n.series.error}")
        return spent
    ref = native_reference(n, cases)
    if ref is None:
        n.series.error = "no reference output (QEMU failed)"
        log(f"{n.label}: n/a: {n.series.error}")
        return spent
    for i in range(args.runs + 1):
        if i == 0:
            log(f"{n.label}: check run ...")
        r = timed_run(n.cmd, args.timeout, console, False)
        spent += r.cpu_seconds
        err = r.reason
        out = [ln.rstrip("\r") for ln in r.console.split("\n")
               if ln.strip()]
        if not err and out != ref:
            err = f"printed other output than QEMU: {out[:4]} vs {ref[:4]}"
        if err:
            n.series.error = err if i == 0 else f"run {i}: {err}"
            n.series.times.clear()
            n.series.cpu.clear()
            log(f"{n.label}: n/a: {n.series.error}")
            break
        n.output = out
        if i == 0:
            if args.verbose:
                log(f"{n.label}: check run {r.seconds:.2f} s")
            continue
        n.series.times.append(r.seconds)
        n.series.cpu.append(r.cpu_seconds)
        if args.verbose:
            log(f"{n.label}: run {i}: {r.seconds:.2f} s wall, "
                f"{r.cpu_seconds:.2f} s CPU")
    return spent


# --------------------------------------------------------------------------
# Rewind binary and host facts


def rewind_revision() -> str:
    try:
        p = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                           cwd=REPO_DIR, capture_output=True, text=True,
                           check=False)
        rev = p.stdout.strip() if p.returncode == 0 else "no commit"
        dirty = subprocess.run(["git", "status", "--porcelain",
                                "--untracked-files=no"],
                               cwd=REPO_DIR, capture_output=True, text=True,
                               check=False).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "")
    except OSError:
        return "unknown"


def fmt_s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def ratio(q: float | None, r: float | None) -> float | None:
    return q / r if q and r and q > 0 and r > 0 else None


def fmt_ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


# --------------------------------------------------------------------------


def parse_list(text: str, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"empty {what} list")
    return items


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Linux boot and a CPU workload on Rewind and QEMU, "
                    "side by side.")
    ap.add_argument("--runs", type=int, default=3,
                    help="timed runs per workload, hart count and emulator "
                         "(default 3)")
    ap.add_argument("--smp", default="1,2",
                    help="comma-separated hart counts (default 1,2)")
    ap.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS),
                    help="comma-separated list of: " + ", ".join(WORKLOADS)
                    + f" (default {','.join(DEFAULT_WORKLOADS)})")
    ap.add_argument("--mem", default="512M", help="guest RAM (default 512M)")
    ap.add_argument("--scale", type=int, default=DEFAULT_SCALE,
                    help="size of the embedded CPU workload, a positive "
                         f"integer (default {DEFAULT_SCALE})")
    ap.add_argument("--workload-src", type=Path,
                    help="build this C file as the CPU workload instead of "
                         "the embedded one (e.g. tests/guest/workload.c); "
                         "then --scale and cpu-smp do not apply")
    ap.add_argument("--settle", type=float, default=5.0, metavar="SECONDS",
                    help="also run every case after `sleep SECONDS` in the "
                         "guest, so that the kernel's asynchronous boot work "
                         "is over before the program starts, and measure the "
                         "program alone (and the moonshot) from those runs; "
                         "0: do not (default 5)")
    ap.add_argument("--no-native", action="store_true",
                    help="do not build and time the CPU workloads natively "
                         f"with the host's {HOST_GCC} (the moonshot table)")
    add_common_options(ap, keeps="the built programs, initramfs and console "
                                 "transcripts", verbose="print every run's time")
    args = ap.parse_args()

    try:
        args.smp_list = sorted({int(x) for x in parse_list(args.smp, "--smp")})
    except ValueError:
        ap.error("--smp takes comma-separated integers, e.g. 1,2")
    if any(n < 1 or n > 64 for n in args.smp_list):
        ap.error("--smp values must be between 1 and 64")
    args.workload_list = parse_list(args.workloads, "--workloads")
    for w in args.workload_list:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r}")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if args.scale < 1:
        ap.error("--scale must be at least 1")
    if not 0 <= args.settle <= 3600:
        ap.error("--settle must be between 0 and 3600 seconds")
    if args.workload_src and not args.workload_src.is_file():
        ap.error(f"{args.workload_src} does not exist")
    if args.workload_src and {"int", "mem", "fp"} & set(args.workload_list):
        ap.error("the int, mem and fp workloads need the embedded program "
                 "(they build it with -DONLY=n)")
    if qemu_missing(args.qemu):
        return 2

    return run_in_build_dir(args.build_dir, "linux_boot.",
                            lambda work: bench(args, work), [(BenchError, 2)])


@dataclass
class Case:
    workload: str
    smp: int
    initrd: Path
    append: str
    qemu: Series = field(default_factory=Series)
    rewind: Series = field(default_factory=Series)
    output: list[str] = field(default_factory=list)   # QEMU's, the reference
    # /init runs a script that sleeps --settle seconds, then execs the
    # program, so that the kernel's asynchronous boot work is over by then.
    settled: bool = False

    @property
    def label(self) -> str:
        return (f"{self.workload}{' settled' if self.settled else ''} "
                f"smp={self.smp}")


def bench(args: argparse.Namespace, build_dir: Path) -> int:
    start_load = os.getloadavg()

    rewind, rewind_reason = rewind_binary(args.no_build, args.rewind)

    gdir = args.guest_dir or cache_dir() / GUEST_SUBDIR
    guest = find_guest(gdir, rewind, args.timeout)
    # A copy, so that every run boots the same initramfs even if a `rewind
    # run` elsewhere rewrites the cached one meanwhile.
    snapshot = build_dir / "initramfs.cpio"
    shutil.copyfile(guest.initrd, snapshot)
    guest.initrd = snapshot

    cases: list[Case] = []
    work_initrd = None
    settled: dict[str, str] = {}    # workload -> its settled script's path
    if any(w != "boot" for w in args.workload_list):
        log("building the CPU workload ("
            + (str(args.workload_src) if args.workload_src
               else f"embedded, scale {args.scale}") + ") ...")
        progs = build_workloads(args.workload_src, args.scale,
                                args.workload_list, build_dir)
        if args.settle > 0:
            for w in ["boot", *args.workload_list]:
                if w not in settled:
                    name, path = settle_script(WORKLOADS[w][0], args.settle,
                                               build_dir)
                    progs[name] = path
                    settled[w] = f"/{name}"
        work_initrd = build_dir / "initramfs-workload.cpio"
        build_initrd(guest.initrd, progs, work_initrd)
    for smp in args.smp_list:
        ws = [w for w in args.workload_list
              if not (w == "cpu-smp" and (smp == 1 or args.workload_src))]
        # (cpu-smp on one hart, or without the embedded program, is `cpu`.)
        for w in ws:
            initrd = guest.initrd if w == "boot" else work_initrd
            cases.append(Case(w, smp, initrd,
                              f"{BASE_CMDLINE} rewind.run={WORKLOADS[w][0]}"))
        # The settled cases, all on the workload initramfs (the settled boot
        # too, so that both sides of the subtraction boot the same one).
        for w in ["boot", *(w for w in ws if w != "boot")] if settled else []:
            cases.append(Case(w, smp, work_initrd,
                              f"{BASE_CMDLINE} rewind.run={settled[w]}",
                              settled=True))

    host = HostCpu()
    ours = 0.0          # CPU seconds of our emulator processes
    busy0 = host.busy_seconds()
    wall0 = time.perf_counter()
    loads = [os.getloadavg()[0]]
    console = build_dir / "console.txt"

    for c in cases:
        label = c.label
        emus = [("qemu", c.qemu, qemu_cmd(args.qemu, guest, c.initrd, c.smp,
                                          args.mem, c.append, console)),
                ("rewind", c.rewind, rewind_cmd(args.rewind, guest, c.initrd,
                                                c.smp, args.mem, c.append))]
        if rewind is None:
            c.rewind.error = rewind_reason
        # One untimed run of each first: warms the page cache, and QEMU's
        # output becomes the reference that every later run must print.
        for i in range(args.runs + 1):
            for emu, series, cmd in emus:
                if series.error:
                    continue
                if i == 0:
                    log(f"{label}: {emu} check run ...")
                r = timed_run(cmd, args.timeout, console, emu == "qemu")
                ours += r.cpu_seconds
                err = r.reason
                if not err:
                    err, out = program_output(r.console)
                    if not err and emu == "qemu" and i == 0:
                        c.output = out
                        if c.workload != "boot" and not args.workload_src \
                                and "workload: done" not in out:
                            err = "the workload printed no `workload: done`"
                    elif not err and out != c.output:
                        ref = "QEMU" if emu == "rewind" else \
                            "its own check run"
                        err = (f"printed other output than {ref}: "
                               f"{out[:4]} vs {c.output[:4]}")
                if err:
                    kept = build_dir / (f"failed-{emu}-{c.workload}"
                                        + ("-settled" if c.settled else "")
                                        + f"-smp{c.smp}.txt")
                    if console.exists():
                        shutil.copyfile(console, kept)
                    series.error = err if i == 0 else f"run {i}: {err}"
                    series.times.clear()
                    series.cpu.clear()
                    log(f"{label}: {emu}: n/a: {err}"
                        + (f" (console in {kept})" if args.build_dir
                           and kept.exists() else ""))
                    if emu == "qemu" and i == 0:
                        c.rewind.error = c.rewind.error or \
                            "no reference output (QEMU failed)"
                    continue
                if i == 0:
                    if args.verbose:
                        log(f"{label}: {emu} check run {r.seconds:.2f} s")
                    continue
                series.times.append(r.seconds)
                series.cpu.append(r.cpu_seconds)
                if args.verbose:
                    log(f"{label}: {emu} run {i}: {r.seconds:.2f} s wall, "
                        f"{r.cpu_seconds:.2f} s CPU")
        loads.append(os.getloadavg()[0])

    natives: list[NativeCase] | None = None
    if not args.no_native and work_initrd is not None:
        log(f"building the CPU workload natively with {HOST_GCC} ...")
        natives = native_cases(args, cases, build_dir)
        for n in natives:
            ours += run_native(n, args, cases, console)
        loads.append(os.getloadavg()[0])

    busy1 = host.busy_seconds()
    wall = time.perf_counter() - wall0
    others = None
    if busy0 is not None and busy1 is not None and wall > 0:
        others = max(0.0, (busy1 - busy0 - ours) / wall)

    report(args, guest, cases, natives, rewind_reason, start_load, loads,
           others)
    return 0


def report(args: argparse.Namespace, guest: Guest, cases: list[Case],
           natives: list[NativeCase] | None, rewind_reason: str,
           start_load: tuple[float, float, float], loads: list[float],
           others: float | None) -> None:
    ncpu = os.cpu_count() or 1
    qemu_version = first_line([args.qemu, "--version"])
    print(f"host CPU:  {host_cpu()}")
    print(f"host OS:   {platform.system()} {platform.release()}")
    print(f"QEMU:      {qemu_version}")
    print(f"rewind:    {args.rewind} ({rewind_revision()})"
          + (f" -- n/a: {rewind_reason}" if rewind_reason else ""))
    print(f"guest:     Linux {guest.version}, {guest.kernel.parent}; "
          f"initramfs {guest.initrd.stat().st_size / 2**20:.1f} MiB; "
          f"{args.mem} RAM; workload "
          + (str(args.workload_src) if args.workload_src
             else f"embedded, scale {args.scale}"))
    print(f"runs:      {args.runs} per case and emulator (and natively), "
          "median wall time of the whole process")
    native_line = native_header(args, natives)
    if native_line:
        print(f"native:    {native_line}")
    print(f"host load: load average {start_load[0]:.2f} {start_load[1]:.2f} "
          f"{start_load[2]:.2f} at the start; 1-minute {min(loads):.2f} to "
          f"{max(loads):.2f} during the runs")
    if others is not None:
        print(f"           other processes kept {others:.2f} of {ncpu} CPUs "
              "busy on average during the runs")
    busy_start = start_load[0] > max(1.0, 0.25 * ncpu)
    busy_others = others is not None and others > 0.25
    if busy_start or busy_others:
        print("WARNING:   the host was busy with other work; wall times are "
              "inflated and noisy; the CPU-time table is steadier")
    print()

    headers = ["workload", "harts", "QEMU s", "Rewind s", "QEMU/Rewind"]
    # Every table but the settled one and the moonshot is over the plain
    # (unsettled) cases only.
    plain = [c for c in cases if not c.settled]
    settled = [c for c in cases if c.settled]
    rows, cpu_rows, notes = [], [], []
    all_ratios, cpu_ratios = [], []
    for c in plain:
        q, r = c.qemu.median(), c.rewind.median()
        x = ratio(q, r)
        if x is not None:
            all_ratios.append((c, x))
        rows.append([c.workload, str(c.smp), fmt_s(q), fmt_s(r), fmt_ratio(x)])
        notes += error_notes(c, rewind_reason)
        qc, rc = c.qemu.median_cpu(), c.rewind.median_cpu()
        if ratio(qc, rc) is not None:
            cpu_ratios.append(ratio(qc, rc))
        cpu_rows.append([c.workload, str(c.smp), fmt_s(qc), fmt_s(rc),
                         fmt_ratio(ratio(qc, rc))])
    net_rows, net_note = program_alone_rows(plain)
    settled_rows, settled_note = program_alone_rows(settled)

    print("Median wall time of the whole process (QEMU/Rewind above 1: Rewind "
          "is faster):")
    print(table(headers, rows, left=2))
    for n in notes:
        print(f"* {n}")
    if rewind_reason:
        print(f"* Rewind n/a: {rewind_reason}")
    if net_rows:
        print()
        print("The program alone: the workload's median minus the boot "
              "median at the same hart count:")
        print(table(headers, net_rows, left=2))
        if net_note:
            print("* n/a where the workload's median was not above the boot "
                  "median: the host's noise exceeded the program's time")
    if settled_rows:
        sleep = f"sleep {fmt_seconds(args.settle)}"
        print()
        print("The program alone, the guest kernel settled first: each "
              f"workload run after `{sleep}` in the guest, minus a settled "
              f"boot (`{sleep}; /bin/true`):")
        print(table(headers, settled_rows, left=2))
        print("* The kernel's asynchronous boot work (crypto self-tests "
              "and the like) otherwise runs during the program; the sleep "
              "costs Rewind nothing, as an idle guest skips ahead in virtual "
              "time, and QEMU the same real seconds in both cases, so it "
              "cancels out.")
        for c in settled:
            for n in error_notes(c, rewind_reason):
                print(f"* {n}")
        if settled_note:
            print("* n/a where the workload's median was not above the "
                  "settled boot's: the host's noise exceeded the program's "
                  "time")
    print()
    print("The same runs by median CPU time (user + system, all threads of "
          "the process):")
    print(table(["workload", "harts", "QEMU CPU s", "Rewind CPU s",
                 "QEMU/Rewind"], cpu_rows, left=2))
    moon = moonshot_rows(cases, natives, args.settle) if natives else None
    if moon:
        print()
        print_moonshot(moon, natives, args.settle)
    print()
    print(verdict(all_ratios, cpu_ratios, len(plain)))
    if moon:
        print(moonshot_verdict(moon))

    if args.json:
        data = {
            "host_cpu": host_cpu(),
            "qemu_version": qemu_version,
            "rewind_revision": rewind_revision(),
            "rewind_unavailable": rewind_reason or None,
            "kernel_version": guest.version,
            "mem": args.mem,
            "scale": args.scale,
            "workload_src": str(args.workload_src) if args.workload_src
            else "embedded",
            "runs": args.runs,
            "settle_seconds": args.settle,
            "load_average_start": list(start_load),
            "load_average_during": loads,
            "other_processes_cpus": others,
            "cases": [{
                "workload": c.workload, "harts": c.smp, "settled": c.settled,
                "append": c.append, "output": c.output,
                "qemu_seconds": c.qemu.times, "qemu_cpu_seconds": c.qemu.cpu,
                "qemu_error": c.qemu.error or None,
                "rewind_seconds": c.rewind.times,
                "rewind_cpu_seconds": c.rewind.cpu,
                "rewind_error": c.rewind.error or None,
            } for c in cases],
            "native": None if natives is None else {
                "compiler": first_line([HOST_GCC, "--version"]),
                "machine": platform.machine(),
                "extra_cflags": native_extra_cflags()[0],
                "cases": [{
                    "workload": n.workload, "pinned_cpus": n.cpus,
                    "cmd": n.cmd, "output": n.output,
                    "seconds": n.series.times, "cpu_seconds": n.series.cpu,
                    "error": n.series.error or None,
                } for n in natives],
            },
            "moonshot": moon,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n",
                             encoding="utf-8")


def native_header(args: argparse.Namespace,
                  natives: list[NativeCase] | None) -> str:
    """The report's `native:` line: compiler, flags and pinning, or why the
    native runs did not happen ('' when there was no CPU workload)."""
    if args.no_native:
        return "not run (--no-native)"
    if natives is None:
        return ""
    extra, why_not = native_extra_cflags()
    flags = " ".join([*CFLAGS, *extra])
    version = first_line([HOST_GCC, "--version"])
    if version == "not installed":
        version = f"{HOST_GCC} not installed"
    line = (f"{version} for {platform.machine()}: {HOST_GCC} {flags} and the "
            "guest build's -D flags")
    if extra:
        line += " (-mfma: the guest's fp code fuses multiply-adds too)"
    if why_not:
        line += f"; {why_not}"
    if any(n.cpus is not None for n in natives):
        line += "; cpu-smp pinned with taskset to as many CPUs as harts"
    return line


def error_notes(c: Case, rewind_reason: str) -> list[str]:
    """Why each emulator's column of a case is n/a (Rewind's unavailability,
    shared by all cases, is noted once elsewhere)."""
    return [f"{c.label}: {emu} n/a: {s.error}"
            for emu, s in (("QEMU", c.qemu), ("Rewind", c.rewind))
            if s.error and s.error != rewind_reason]


def program_alone_rows(cases: list[Case]) -> tuple[list[list[str]], bool]:
    """The table of the program alone over `cases` (all plain or all
    settled): each workload's median minus the boot median at the same hart
    count, and whether some difference was not positive (then n/a)."""
    boot = {c.smp: c for c in cases if c.workload == "boot"}
    rows, note = [], False
    for c in cases:
        b = boot.get(c.smp)
        if c.workload == "boot" or b is None:
            continue
        q, r = c.qemu.median(), c.rewind.median()
        bq, br = b.qemu.median(), b.rewind.median()
        nq = q - bq if q is not None and bq is not None else None
        nr = r - br if r is not None and br is not None else None
        if (nq is not None and nq <= 0) or (nr is not None and nr <= 0):
            note = True
            nq = nq if nq is not None and nq > 0 else None
            nr = nr if nr is not None and nr > 0 else None
        rows.append([c.workload, str(c.smp), fmt_s(nq), fmt_s(nr),
                     fmt_ratio(ratio(nq, nr))])
    return rows, note


def net_of_boot(total: float | None, boot: float | None) -> float | None:
    """A workload's median minus the boot median; None where that is not
    positive (the host's noise exceeded the program's time)."""
    if total is None or boot is None or total - boot <= 0:
        return None
    return total - boot


def moonshot_rows(cases: list[Case], natives: list[NativeCase],
                  settle: float) -> list[dict]:
    """Per CPU workload and hart count: the program alone on each emulator
    (wall and CPU) against its native median, as plain data for the table
    and --json. The program alone is the settled workload's median minus the
    settled boot's (method "settled") when --settle is above 0 and the
    settled cases ran, else the workload's median minus the boot median
    ("unsettled"), as in the tables of the program alone; the unsettled
    figures are kept under *_unsettled keys either way."""
    def find(workload: str, smp: int, settled: bool) -> Case | None:
        return next((c for c in cases if c.workload == workload
                     and c.smp == smp and c.settled == settled), None)

    rows = []
    for c in cases:
        if c.settled:
            continue
        cpus = c.smp if c.workload == "cpu-smp" else None
        n = next((n for n in natives
                  if n.workload == c.workload and n.cpus == cpus), None)
        if n is None:
            continue
        nat, nat_cpu = n.series.median(), n.series.median_cpu()
        alone = {}
        for method, settled in (("unsettled", False), ("settled", True)):
            w = c if not settled else find(c.workload, c.smp, True)
            b = find("boot", c.smp, settled)
            if w is None:
                continue
            q = net_of_boot(w.qemu.median(), b and b.qemu.median())
            r = net_of_boot(w.rewind.median(), b and b.rewind.median())
            qc = net_of_boot(w.qemu.median_cpu(), b and b.qemu.median_cpu())
            rc = net_of_boot(w.rewind.median_cpu(),
                             b and b.rewind.median_cpu())
            alone[method] = {
                "has_boot": b is not None,
                "qemu_workload_seconds": q, "rewind_workload_seconds": r,
                "qemu_workload_cpu_seconds": qc,
                "rewind_workload_cpu_seconds": rc,
                "qemu_over_native": ratio(q, nat),
                "rewind_over_native": ratio(r, nat),
                "qemu_over_native_cpu": ratio(qc, nat_cpu),
                "rewind_over_native_cpu": ratio(rc, nat_cpu),
            }
        method = "settled" if settle > 0 and "settled" in alone \
            else "unsettled"
        x = alone[method]["rewind_over_native"]
        row = {
            "workload": c.workload, "harts": c.smp, "native_cpus": cpus,
            "method": method,
            "native_seconds": nat, "native_cpu_seconds": nat_cpu,
            "native_error": n.series.error or None,
            **alone[method],
            "rewind_within_3x": None if x is None else x <= MOONSHOT,
        }
        for key, value in alone["unsettled"].items():
            row[f"{key}_unsettled"] = value
        rows.append(row)
    return rows


def print_moonshot(rows: list[dict], natives: list[NativeCase],
                   settle: float) -> None:
    if any(r["method"] == "settled" for r in rows):
        how = (f"its median minus a settled boot, both after `sleep "
               f"{fmt_seconds(settle)}`")
    else:
        how = "its median minus the boot median"
    print(f"The moonshot, Rewind within {MOONSHOT:g}x of native: the program "
          f"alone on each emulator ({how}) against the same program built "
          f"for the host and run natively ({platform.machine()}); X/native "
          "is how many times slower than native:")
    yes_no = {None: "n/a", True: "yes", False: "no"}
    print(table(["workload", "harts", "native s", "QEMU s", "Rewind s",
                 "QEMU/native", "Rewind/native", f"within {MOONSHOT:g}x"],
                [[r["workload"], str(r["harts"]), fmt_s(r["native_seconds"]),
                  fmt_s(r["qemu_workload_seconds"]),
                  fmt_s(r["rewind_workload_seconds"]),
                  fmt_ratio(r["qemu_over_native"]),
                  fmt_ratio(r["rewind_over_native"]),
                  yes_no[r["rewind_within_3x"]]] for r in rows], left=2))
    for n in natives:
        if n.series.error:
            print(f"* {n.label}: n/a: {n.series.error}")
    if any(not r["has_boot"] for r in rows):
        print("* QEMU and Rewind n/a without the boot workload at the same "
              "hart count (add boot to --workloads)")
    head = [r for r in rows if r["workload"] == "cpu"
            and r["method"] == "settled"]
    if head:
        r = min(head, key=lambda r: r["harts"])
        if not r["has_boot_unsettled"]:
            old = "n/a without the boot workload"
        else:
            old = (f"Rewind/native {fmt_ratio(r['rewind_over_native_unsettled'])}"
                   f" (Rewind {fmt_s(r['rewind_workload_seconds_unsettled'])} "
                   f"s), QEMU/native "
                   f"{fmt_ratio(r['qemu_over_native_unsettled'])}")
        print(f"* For comparison, `cpu` on {r['harts']} hart(s) unsettled "
              "(minus the boot median, so including the kernel's remaining "
              f"boot work): {old}")
    if any(n.cpus is not None and not n.series.error for n in natives):
        online = min(os.cpu_count() or 1, 8)
        print(f"* cpu-smp natively: pinned to as many host CPUs as harts, but "
              f"the program starts one thread per online host CPU "
              f"({online} here; at most 8), not per CPU it may use")


def moonshot_verdict(rows: list[dict]) -> str:
    """One line: the headline of the moonshot, the plain `cpu` program on the
    fewest harts (one thread, so no host parallelism on either side), by the
    rows' method (settled or not)."""
    goal = (f"Moonshot (the program alone on Rewind within {MOONSHOT:g}x of "
            f"native {platform.machine()})")
    if not any(r["workload"] == "cpu" for r in rows):
        return f"{goal}: its headline, the `cpu` workload, was not run."
    head = [r for r in rows if r["workload"] == "cpu"
            and r["rewind_over_native"] is not None]
    if not head:
        return f"{goal}: no comparison was possible (see the n/a notes)."
    r = min(head, key=lambda r: r["harts"])
    x = r["rewind_over_native"]
    line = (f"{goal}: `cpu` on {r['harts']} hart(s)"
            + (", the kernel settled" if r["method"] == "settled" else "")
            + f", {r['rewind_workload_seconds']:.2f} s against "
            f"{r['native_seconds']:.2f} s, Rewind/native {x:.2f}")
    line += (" -- met" if x <= MOONSHOT else
             f" -- not met: Rewind needs {x / MOONSHOT:.1f}x")
    if r["qemu_over_native"] is not None:
        line += f"; QEMU/native {r['qemu_over_native']:.2f}"
    by_cpu = [f"{emu} {fmt_ratio(r[key])}" for emu, key in
              (("Rewind", "rewind_over_native_cpu"),
               ("QEMU", "qemu_over_native_cpu")) if r[key] is not None]
    if by_cpu:
        line += f" (by CPU time: {', '.join(by_cpu)})"
    return line + "."


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def verdict(ratios: list[tuple[Case, float]], cpu_ratios: list[float],
            total: int) -> str:
    """One line: where Rewind stands against the goal of beating QEMU's TCG."""
    if not ratios:
        return ("Goal (faster than QEMU's TCG): no comparison was possible "
                "(see the n/a notes).")
    geo = geomean([x for _, x in ratios])
    faster = [f"{c.workload}/{c.smp}" for c, x in ratios if x > 1]
    worst = min(ratios, key=lambda t: t[1])
    line = (f"Goal (faster than QEMU's TCG): Rewind is faster in "
            f"{len(faster)} of {len(ratios)} cases"
            + (f" ({', '.join(faster)})" if faster else "")
            + f"; geometric mean QEMU/Rewind {geo:.2f}")
    if geo >= 1:
        line += (f" -- met overall; slowest case {worst[0].workload} on "
                 f"{worst[0].smp} hart(s) at {worst[1]:.2f}")
    else:
        line += (f" -- not met: Rewind needs {1 / geo:.1f}x on average, "
                 f"{1 / worst[1]:.1f}x on {worst[0].workload} with "
                 f"{worst[0].smp} hart(s)")
    if cpu_ratios:
        line += f" (by CPU time: {geomean(cpu_ratios):.2f})"
    if len(ratios) < total:
        line += f"; {total - len(ratios)} case(s) n/a"
    return line + "."


if __name__ == "__main__":
    sys.exit(main())
