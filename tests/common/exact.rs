//! The bare-metal programs of tests/exact (and, with debug symbols, of
//! tests/gdb), built with the RISC-V cross compiler (./test.sh installs it)
//! like tests/asm's: rv64gc, no libc, linked at the start of RAM, started
//! in M-mode with no firmware.

// Each suite that includes this module uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Builds tests/exact/<name>.S into an ELF file, once per test process
/// (tests run at once and must not rewrite a file another is running), and
/// returns its path.
pub fn build(name: &'static str) -> PathBuf {
    built("exact", name)
}

/// Builds tests/gdb/<name>.S with debug symbols (for gdb to break on
/// functions and watch variables by name).
pub fn build_with_symbols(name: &'static str) -> PathBuf {
    built("gdb", name)
}

fn built(dir: &'static str, name: &'static str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<(&str, &str), PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    built
        .entry((dir, name))
        .or_insert_with(|| compile(dir, name))
        .clone()
}

fn compile(dir: &str, name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    // One directory per test binary: binaries run one after another, but a
    // program is built once in each.
    let exe = std::env::current_exe().unwrap_or_default();
    let suite = exe
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir).join(suite);
    std::fs::create_dir_all(&out_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", out_dir.display()));
    let elf = out_dir.join(format!("{name}.elf"));
    let output = Command::new("riscv64-linux-gnu-gcc")
        .args([
            "-g",
            "-march=rv64gc",
            "-mabi=lp64d",
            "-nostdlib",
            "-nostartfiles",
        ])
        .args(["-static", "-Wl,--build-id=none", "-T"])
        .arg(root.join("asm").join("link.ld"))
        .arg(root.join(dir).join(format!("{name}.S")))
        .arg("-o")
        .arg(&elf)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run riscv64-linux-gnu-gcc ({e}): ./test.sh installs gcc-riscv64-linux-gnu"
            )
        });
    assert!(
        output.status.success(),
        "building tests/{dir}/{name}.S failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    elf
}
