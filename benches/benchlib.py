"""Helpers shared by the benchmark scripts in this directory."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent


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
