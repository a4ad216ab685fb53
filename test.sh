#!/usr/bin/env bash
# Rewind's test command: installs what the tests need on a fresh Debian
# machine, then runs formatting, lint and every test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")"

# --- Host packages -----------------------------------------------------------
# The cross compiler builds the guest test programs; QEMU is the reference the
# differential and boot tests compare against; qemu-img, mke2fs and debugfs
# make and inspect disk images; busybox's udhcpc and curl play a guest's
# network stack in the TAP test; apt-get and dpkg-deb fetch the default guest.
need_pkgs=()
command -v riscv64-linux-gnu-gcc >/dev/null || need_pkgs+=(gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu)
command -v qemu-system-riscv64 >/dev/null || need_pkgs+=(qemu-system-misc)
command -v qemu-img >/dev/null || need_pkgs+=(qemu-utils)
command -v mke2fs >/dev/null || need_pkgs+=(e2fsprogs)
command -v busybox >/dev/null || need_pkgs+=(busybox)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v ip >/dev/null || need_pkgs+=(iproute2)
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
cargo test --workspace --locked --no-fail-fast

# --- Fuzzing -------------------------------------------------------------------
# A short run of every fuzz target (FUZZ_SECONDS each, default 20): a smoke
# test that the parsers of untrusted bytes survive their fuzzers.
bash fuzz/ci.sh
