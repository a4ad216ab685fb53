//! `rewind inspect`: what a recording holds, for a person to read.

use crate::report::hex;
use crate::CliError;
use rewind_replay::format::{read_all, Recording};
use rewind_replay::{Event, FirmwareRef, ImageRef};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

fn image(r: &ImageRef) -> String {
    format!(
        "{} ({} bytes, blake3 {})",
        r.path,
        r.size,
        &hex(&r.blake3)[..16]
    )
}

pub fn inspect(path: &Path) -> Result<ExitCode, CliError> {
    let recording = read_all(path).map_err(|e| CliError::Message(e.to_string()))?;
    let text = describe(path, &recording);
    // A reader that stops early (`| head`) is not an error.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// The description `inspect` prints.
fn describe(path: &Path, recording: &Recording) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    macro_rules! println {
        ($($arg:tt)*) => {{ let _ = writeln!(out, $($arg)*); }};
    }
    let h = &recording.header;
    let c = &h.config;
    println!("recording   {}", path.display());
    println!(
        "size        {} bytes in {} frames (written by Rewind {})",
        recording.file_size, recording.frames, h.writer
    );
    if let Some(offset) = recording.truncated_at {
        println!("cut short   at byte {offset}: the part before it replays");
    }
    println!(
        "machine     {} hart(s), {} MiB RAM",
        c.harts,
        c.mem_size >> 20
    );
    let firmware = match &c.firmware {
        FirmwareRef::None => "none".to_string(),
        FirmwareRef::Builtin => "built-in SBI".to_string(),
        FirmwareRef::Binary(r) => image(r),
    };
    println!("firmware    {firmware}");
    println!("kernel      {}", image(&c.kernel));
    if let Some(initrd) = &c.initrd {
        println!("initrd      {}", image(initrd));
    }
    if c.default_guest {
        println!("            (the default guest)");
    }
    println!("cmdline     {}", c.bootargs);
    println!(
        "rtc epoch   {} s since 1970; seed {}",
        c.rtc_epoch_ns / 1_000_000_000,
        c.seed
    );
    for (n, d) in c.disks.iter().enumerate() {
        let mode = match (d.read_only, d.persist) {
            (true, _) => "read-only",
            (false, true) => "persist",
            (false, false) => "overlay",
        };
        println!(
            "disk {n}      {} ({} bytes, {mode}, base blake3 {})",
            d.path,
            d.size,
            &hex(&d.base_blake3)[..16]
        );
    }
    for (n, net) in c.nets.iter().enumerate() {
        let m = net.mac;
        println!(
            "net {n}       {} (mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x})",
            net.backend, m[0], m[1], m[2], m[3], m[4], m[5]
        );
    }
    if c.hvc {
        println!("hvc0        yes");
    }
    if let Some(entropy) = c.entropy {
        println!("entropy     {entropy:?}");
    }
    let mut kinds: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for event in &recording.events {
        let bytes = match event {
            Event::Console { bytes, .. } | Event::Entropy { bytes, .. } => bytes.len(),
            Event::Packet { frame, .. } => frame.len(),
            _ => 0,
        } as u64;
        let entry = kinds.entry(event.kind()).or_default();
        entry.0 += 1;
        entry.1 += bytes;
    }
    let (icount, guest_ns) = match recording.events.last() {
        Some(Event::End { at, guest_ns, .. }) => (at.icount, *guest_ns),
        Some(Event::Checkpoint { at, state }) => (at.icount, state.guest_ns),
        Some(e) => (e.at().icount, 0),
        None => (0, 0),
    };
    println!(
        "length      {icount} instructions, {:.3} s of guest time{}",
        guest_ns as f64 / 1e9,
        if recording.end().is_some() {
            ""
        } else {
            " (to the last complete frame)"
        }
    );
    match recording.end() {
        Some(Event::End {
            reason, state_hash, ..
        }) => println!("ended       {reason}; state hash {}", hex(state_hash)),
        _ => println!("ended       (no end: the recording was cut short)"),
    }
    println!("checkpoints every {} instructions", h.checkpoint_every);
    println!("events");
    for (kind, (count, bytes)) in kinds {
        if bytes > 0 {
            println!("  {kind:<14} {count:>8}  ({bytes} bytes)");
        } else {
            println!("  {kind:<14} {count:>8}");
        }
    }
    out
}
