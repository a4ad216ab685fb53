"""Helpers shared by the benchmark scripts in this directory."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
# Where `rewind run` caches the default guest, below its cache directory
# (crates/guest/src/lib.rs).
GUEST_SUBDIR = "debian-trixie-riscv64"


def build_rewind(cargo: str) -> str:
    """Run cargo build --release; return '' or the reason it failed."""
    print("building rewind: cargo build --release ...", file=sys.stderr,
          flush=True)
    try:
        p = subprocess.run([cargo, "build", "--release"], cwd=REPO_DIR,
                           capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return "cargo is not installed"
    if p.returncode == 0:
        return ""
    lines = p.stderr.splitlines()
    errors = [ln for ln in lines if ln.startswith("error")]
    first = errors[0] if errors else (lines[-1] if lines else "no output")
    return f"cargo build --release failed ({first.strip()})"


def host_cpu() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    extra = []
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True,
                               check=False).stdout
        info = dict(
            (k.strip(), v.strip())
            for k, _, v in (ln.partition(":") for ln in lscpu.splitlines()))
        if info.get("CPU family") and info.get("Model"):
            extra.append(f"family {info['CPU family']} model {info['Model']}")
        if info.get("Hypervisor vendor"):
            extra.append(f"{info['Hypervisor vendor']} guest")
    except OSError:
        pass
    extra.append(f"{os.cpu_count()} CPUs")
    return f"{model} ({', '.join(extra)})"


def first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True,
                             check=False).stdout
    except OSError:
        return "not installed"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def log(msg: str) -> None:
    """A progress line on stderr, shown at once."""
    print(msg, file=sys.stderr, flush=True)


def rewind_binary(no_build: bool, path: Path) -> tuple[Path | None, str]:
    """Build rewind (unless no_build); return the binary's absolute path and
    '', or None and why Rewind cannot be measured (also logged)."""
    reason = "" if no_build else build_rewind(os.environ.get("CARGO", "cargo"))
    if not reason and not path.is_file():
        reason = f"{path} does not exist"
    if reason:
        log(f"rewind: n/a: {reason}")
        return None, reason
    return path.resolve(), ""


def run_in_build_dir(build_dir: Path | None, prefix: str, bench,
                     errors: list[tuple[type, int]]) -> int:
    """Run bench(dir) in build_dir (kept) or a temporary directory (removed
    afterwards). An exception of a class in errors is printed as one
    sentence and turned into that exit status."""
    tmp = None
    if build_dir:
        work = build_dir.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix=prefix)
        work = Path(tmp.name)
    try:
        return bench(work)
    except tuple(cls for cls, _ in errors) as e:
        print(f"error: {e}", file=sys.stderr)
        return next(code for cls, code in errors if isinstance(e, cls))
    finally:
        if tmp:
            tmp.cleanup()


def default_rewind() -> Path:
    """target/release/rewind, under $CARGO_TARGET_DIR when that is set (the
    cargo build the scripts run honours it too)."""
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else REPO_DIR / "target"
    if not base.is_absolute():
        base = REPO_DIR / base
    return base / "release" / "rewind"


def add_common_options(ap, *, keeps: str, timeout_for: str = "a run",
                       verbose: str = "print every run's times",
                       build_dir_note: str = "") -> None:
    """The options of every benchmark of a Linux guest on both emulators:
    --qemu, --rewind, --no-build, --guest-dir, --timeout, --build-dir (which
    keeps `keeps`), --json and -v."""
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--rewind", type=Path, default=default_rewind(),
                    help="the rewind binary (default target/release/rewind, "
                         "under $CARGO_TARGET_DIR if set)")
    ap.add_argument("--no-build", action="store_true",
                    help="do not run cargo build --release; use --rewind as is")
    ap.add_argument("--guest-dir", type=Path,
                    help="the default guest's files (default: rewind's cache, "
                         f"<cache>/{GUEST_SUBDIR})")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help=f"seconds before {timeout_for} is abandoned "
                         "(default 600)")
    ap.add_argument("--build-dir", type=Path,
                    help=f"keep {keeps} here (default: a temp dir"
                         f"{build_dir_note})")
    ap.add_argument("--json", type=Path, help="also write all results here")
    ap.add_argument("-v", "--verbose", action="store_true", help=verbose)


def qemu_missing(qemu: str) -> bool:
    """True, after saying so in one sentence, if `qemu` is not on PATH."""
    if shutil.which(qemu) is not None:
        return False
    print(f"error: {qemu} not found (Debian package qemu-system-misc)",
          file=sys.stderr)
    return True


def table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A Markdown table; the first `left` columns are text, the rest numbers
    (right-aligned)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    right = [i >= left for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        out = [c.rjust(w) if r else c.ljust(w)
               for c, w, r in zip(cells, widths, right)]
        return "| " + " | ".join(out) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2))
                         for w, r in zip(widths, right)) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])
