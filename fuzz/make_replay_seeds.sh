#!/usr/bin/env bash
# Writes the replay fuzz target's seeds (fuzz/corpus/replay): packed
# recordings of the bare-metal programs in tests/exact, small enough for the
# target's limits (16 MiB of RAM, well under 2 M instructions), with console
# input and checkpoints so that every kind of event is there to mutate.
# Run after the recording format or the machine model changes:
#     bash fuzz/make_replay_seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
rewind=target/release/rewind
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out=fuzz/corpus/replay
mkdir -p "$out"
rm -f "$out"/seed-*
build() {
    riscv64-linux-gnu-gcc -march=rv64gc -mabi=lp64d -nostdlib -nostartfiles -static \
        -Wl,--build-id=none -T tests/asm/link.ld "tests/exact/$1.S" -o "$work/$1.elf"
}
for prog in echo stale_tlb mix; do build "$prog"; done
common=(--pack --mem 16M --firmware none --checkpoint-every 100000)
printf 'hi\nyo\n' | "$rewind" record -o "$out/seed-echo" "${common[@]}" --kernel "$work/echo.elf" >/dev/null
"$rewind" record -o "$out/seed-stale-tlb" "${common[@]}" --kernel "$work/stale_tlb.elf" </dev/null >/dev/null
"$rewind" record -o "$out/seed-mix-2-harts" "${common[@]}" --smp 2 --kernel "$work/mix.elf" \
    --stop-at 700000 </dev/null >/dev/null
ls -l "$out"
