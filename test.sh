#!/usr/bin/env bash
# Rewind's test command: installs what the tests need on a fresh Debian
# machine, then runs formatting, lint and every test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")"

# --- Host packages -----------------------------------------------------------
# The cross compiler and its C library headers build the guest test programs
# (without --install-recommends, gcc-riscv64-linux-gnu does not bring the
# headers); QEMU is the reference the differential and boot tests compare
# against; qemu-img, mke2fs and debugfs make and inspect disk images;
# busybox's udhcpc and curl play a guest's network stack in the TAP test;
# gdb-multiarch drives the gdb server's tests; apt-get and dpkg-deb fetch
# the default guest. Packages are checked by name,
# not by the commands they provide: a header package has no command.
need_pkgs=()
for pkg in gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu libc6-dev-riscv64-cross \
           qemu-system-misc qemu-utils e2fsprogs busybox curl iproute2 gdb-multiarch; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [ "$status" = "install ok installed" ] || need_pkgs+=("$pkg")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "test.sh: installing ${need_pkgs[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    # Some machines come with a newer qemu-utils (QEMU 10, from backports)
    # than the archive's qemu-system-misc (QEMU 7.2, the tests' reference),
    # and the newer one declares that it breaks the older system emulator, so
    # apt refuses the whole install. Ask for the qemu-utils of the emulator's
    # own version: one consistent QEMU, the one the suite is checked against.
    downgrade=()
    if [[ " ${need_pkgs[*]} " == *" qemu-system-misc "* ]]; then
        want="$(apt-cache policy qemu-system-misc | awk '/Candidate:/ {print $2}')"
        have="$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)"
        if [ -n "$want" ] && [ -n "$have" ] && [ "$want" != "$have" ]; then
            echo "test.sh: qemu-utils $have -> $want, to match qemu-system-misc"
            need_pkgs+=("qemu-utils=$want")
            downgrade=(--allow-downgrades)
        fi
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
        "${downgrade[@]}" "${need_pkgs[@]}"
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
