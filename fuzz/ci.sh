#!/usr/bin/env bash
# Runs every fuzz target briefly, as CI does: a smoke test that the parsers of
# untrusted bytes still survive their fuzzers, not a search for deep bugs.
#
#   FUZZ_SECONDS=60 fuzz/ci.sh     # seconds per target (default 20)
#
# A target starts from its seed corpus in fuzz/corpus/<target> where there is
# one, read-only: new inputs go to a temporary directory, so CI never grows the
# committed corpus. Fails if any target crashes; the input that crashed it is
# left in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-20}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/ci.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# The targets are the [[bin]] entries of fuzz/Cargo.toml.
mapfile -t targets < <(awk '
    /^\[\[bin\]\]/ { in_bin = 1; next }
    /^\[/ { in_bin = 0 }
    in_bin && /^name *= *"/ { split($0, q, "\""); print q[2] }
' Cargo.toml)
if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz/ci.sh: no fuzz targets found in fuzz/Cargo.toml" >&2
    exit 1
fi

# cargo-fuzz needs nightly flags (sanitizers); the pinned stable toolchain
# accepts them with RUSTC_BOOTSTRAP. Building all targets in one go lets cargo
# share the dependencies' build between them.
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failed=()
for target in "${targets[@]}"; do
    corpus="$work/$target"
    mkdir -p "$corpus"
    dirs=("$corpus")
    [ -d "corpus/$target" ] && dirs+=("corpus/$target")
    log="$work/$target.log"
    start=$SECONDS
    if cargo fuzz run -O "$target" "${dirs[@]}" -- -max_total_time="$seconds" >"$log" 2>&1; then
        runs="$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo '?')"
        echo "fuzz $target: ok ($runs runs in $((SECONDS - start)) s)"
    else
        echo "fuzz $target: FAILED after $((SECONDS - start)) s; the end of its log:"
        tail -n 40 "$log" | sed 's/^/    /'
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz/ci.sh: ${failed[*]} crashed; reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run -O <target> fuzz/artifacts/<target>/<crash file>" >&2
    exit 1
fi
echo "fuzz/ci.sh: all ${#targets[@]} targets ran ${seconds} s each without a crash"
