#!/usr/bin/env bash
# Rewind's test command: installs what the tests need on a fresh Debian
# machine, then runs formatting, lint and every test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")"

# --- Host packages -----------------------------------------------------------
# The cross compiler builds the guest test programs; QEMU is the reference the
# differential tests compare against.
need_pkgs=()
command -v riscv64-linux-gnu-gcc >/dev/null || need_pkgs+=(gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu)
command -v qemu-system-riscv64 >/dev/null || need_pkgs+=(qemu-system-misc)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "test.sh: installing ${need_pkgs[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
fi

# --- Rust --------------------------------------------------------------------
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --release --locked
cargo test --workspace --locked
