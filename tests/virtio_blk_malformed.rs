//! A hostile guest against virtio-blk: tests/virtio/blk_malformed.c, a
//! bare-metal program (no firmware, no QEMU), feeds the device descriptor
//! loops, chains longer than the queue, buffers outside RAM, lengths that
//! overflow, bad queue sizes, a misaligned ring and short headers. The host
//! must survive all of it, the device must report DEVICE_NEEDS_RESET each
//! time (the guest checks and prints what it saw), and Rewind must print one
//! warning line per problem naming the device and the problem.

#[path = "virtio/common.rs"]
mod common;

use common::*;
use std::time::Duration;

/// Two small raw disks whose first sector starts with a known string.
fn disks(dir: &std::path::Path) -> (String, String) {
    let mut bytes = vec![0u8; 64 * 1024];
    bytes[..23].copy_from_slice(b"REWIND VIRTIO TEST DISK");
    let a = dir.join("disk0.img");
    let b = dir.join("disk1.img");
    std::fs::write(&a, &bytes).expect("writing disk0.img");
    std::fs::write(&b, &bytes).expect("writing disk1.img");
    (a.display().to_string(), b.display().to_string())
}

#[test]
fn malformed_descriptors_break_the_device_not_the_host() {
    let dir = scratch("blk_malformed");
    let elf = build_guest("blk_malformed", &dir);
    let (disk0, disk1) = disks(&dir);
    let run = run_rewind(
        &[
            "--firmware".into(),
            "none".into(),
            "--kernel".into(),
            elf.display().to_string(),
            "--mem".into(),
            "64M".into(),
            "--disk".into(),
            disk0.clone(),
            "--disk".into(),
            format!("{disk1},ro"),
        ],
        Duration::from_secs(60),
    );
    assert!(
        run.code() == Some(0) && run.stdout.contains("PASS virtio-blk-malformed"),
        "the hostile guest did not pass; {}",
        run.describe()
    );
    for case in [
        "descriptor loop",
        "chain longer than the queue",
        "indirect table loop",
        "address outside RAM",
        "address wraps around",
        "length past the end of RAM",
        "queue size 3",
        "queue size 512",
        "misaligned descriptor table",
        "short header",
        "available index overrun",
    ] {
        let line = format!("case {case}: device status 0x4f (DEVICE_NEEDS_RESET)");
        assert!(
            run.stdout.contains(&line),
            "no `{line}`; {}",
            run.describe()
        );
    }
    // One warning per problem, naming the device and what was wrong.
    let prefix = "rewind: warning: virtio-blk 0 (virtio_mmio@10001000): ";
    let suffix = "; the device stops until the guest resets it";
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("rewind: warning:"))
        .collect();
    assert_eq!(warnings.len(), 11, "{}", run.describe());
    for w in &warnings {
        assert!(w.starts_with(prefix) && w.ends_with(suffix), "{w}");
    }
    for problem in [
        "the descriptor chain starting at 0 is longer than 8 descriptors (a loop?)",
        "the descriptor chain starting at 0 is longer than 2 descriptors (a loop?)",
        "descriptor 0 points at 0x1000 with length 16, which is not inside guest RAM",
        "descriptor 1 points at 0xfffffffffffff000 with length 8192, which is not inside guest RAM",
        "with length 4294967295, which is not inside guest RAM",
        "queue 0 has size 3, which is not a power of two between 1 and 256",
        "queue 0 has size 512, which is not a power of two between 1 and 256",
        "is not 16-byte aligned",
        "request 0 has 8 device-readable bytes, fewer than the 16-byte header",
        "the available index moved 100 entries past the device, more than the queue size 8",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(problem)),
            "no warning about `{problem}`; {}",
            run.describe()
        );
    }
    // The read-only disk was not written.
    let after = std::fs::read(&disk1).expect("reading disk1.img");
    assert_eq!(&after[..23], b"REWIND VIRTIO TEST DISK");
}

#[test]
fn too_many_virtio_devices_is_one_sentence() {
    let dir = scratch("too_many");
    let (disk0, _) = disks(&dir);
    let mut args: Vec<String> = vec!["--firmware".into(), "none".into()];
    args.extend([
        "--kernel".into(),
        build_guest("blk_malformed", &dir).display().to_string(),
    ]);
    for _ in 0..9 {
        args.extend(["--disk".into(), format!("{disk0},ro")]);
    }
    let run = run_rewind(&args, Duration::from_secs(60));
    assert_eq!(run.code(), Some(1), "{}", run.describe());
    assert_eq!(
        run.stderr.trim(),
        "rewind: the machine would need 10 virtio devices (disks, network cards, hvc0 and the entropy source), but the board has 8 slots"
    );
}
