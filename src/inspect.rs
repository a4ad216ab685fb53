//! `rewind inspect`: what a recording or snapshot holds, for a person to
//! read.

use crate::CliError;
use rewind_replay::{Event, FirmwareRef, ImageRef, PackedImage, RecordedConfig};
use rewind_session::hex;
use rewind_session::recording::{self, Scan};
use rewind_snapshot::Snapshot;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write as _};
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
    let text = if is_snapshot(path) {
        describe_snapshot(path)?
    } else {
        let mut kinds: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
        let mut last = None;
        let scan = recording::scan(path, |event| {
            let bytes = match event {
                Event::Console { bytes, .. } | Event::Entropy { bytes, .. } => bytes.len(),
                Event::Packet { frame, .. } => frame.len(),
                _ => 0,
            } as u64;
            let entry = kinds.entry(event.kind()).or_default();
            entry.0 += 1;
            entry.1 += bytes;
            last = Some(match event {
                Event::End { at, guest_ns, .. } => (at.icount, *guest_ns),
                Event::Checkpoint { at, state } => (at.icount, state.guest_ns),
                e => (e.at().icount, 0),
            });
        })?;
        describe(path, &scan, &kinds, last.unwrap_or((0, 0)))
    };
    // A reader that stops early (`| head`) is not an error.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// Whether the file at `path` starts like a snapshot (anything else is
/// read as a recording, which names what is wrong with it).
fn is_snapshot(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"RWNDSNAP"
}

/// What `inspect` prints of the files a recording or snapshot carries.
fn packed_line(packed: &[PackedImage]) -> String {
    if packed.is_empty() {
        return "no: it replays where the files above are (rewind pack carries them inside)"
            .to_string();
    }
    let stored: u64 = packed.iter().map(|p| p.stored).sum();
    let size: u64 = packed.iter().map(|p| p.size).sum();
    let names: Vec<String> = packed
        .iter()
        .map(|p| hex(&p.blake3)[..16].to_string())
        .collect();
    format!(
        "yes: {} files of {size} bytes in {stored} bytes ({})",
        packed.len(),
        names.join(", ")
    )
}

/// The description `inspect` prints of a snapshot.
fn describe_snapshot(path: &Path) -> Result<String, CliError> {
    let snapshot = Snapshot::open(path).map_err(|e| CliError::Message(e.to_string()))?;
    let mut out = String::new();
    macro_rules! println {
        ($($arg:tt)*) => {{ let _ = writeln!(out, $($arg)*); }};
    }
    let component = |name: &str| snapshot.component(name);
    let model = rewind_machine::state::saved_model(component("model"));
    let writer = component("host:writer").map(|w| String::from_utf8_lossy(w).into_owned());
    println!("snapshot    {}", path.display());
    println!(
        "size        {} bytes; id {}",
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        snapshot.id()
    );
    println!(
        "written by  Rewind {}, machine model {}",
        writer.as_deref().unwrap_or("0.1.0"),
        model.map_or("unreadable".to_string(), |m| m.to_string())
    );
    match snapshot.parent() {
        Some(parent) if component("host:power-on").is_some_and(|p| p == parent.as_bytes()) => {
            println!(
                "pages       {} written since power-on",
                snapshot.page_indices().len()
            )
        }
        Some(parent) => println!(
            "pages       {} written since its parent {parent}",
            snapshot.page_indices().len()
        ),
        None => println!("pages       {} (all of RAM)", snapshot.page_indices().len()),
    }
    if let Some(config) = component(rewind_session::snapshot::CONFIG)
        .and_then(|c| serde_json::from_slice::<rewind_replay::RecordedConfig>(c).ok())
    {
        describe_config(&mut out, &config);
    }
    let packed: Vec<PackedImage> = component(rewind_session::packed::PACKED_LIST)
        .and_then(|l| serde_json::from_slice(l).ok())
        .unwrap_or_default();
    let _ = writeln!(out, "packed      {}", packed_line(&packed));
    Ok(out)
}

/// The description `inspect` prints of a recording.
fn describe(
    path: &Path,
    scan: &Scan,
    kinds: &BTreeMap<&'static str, (u64, u64)>,
    (icount, guest_ns): (u64, u64),
) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    macro_rules! println {
        ($($arg:tt)*) => {{ let _ = writeln!(out, $($arg)*); }};
    }
    let h = &scan.header;
    println!("recording   {}", path.display());
    println!(
        "size        {} bytes in {} frames (written by Rewind {}, machine model {})",
        scan.file_size,
        scan.frames,
        h.writer,
        rewind_machine::MODEL_VERSION
    );
    if let Some(offset) = scan.truncated_at {
        println!("cut short   at byte {offset}: the part before it replays");
    }
    describe_config(&mut out, &h.config);
    println!("packed      {}", packed_line(&h.packed));
    println!(
        "length      {icount} steps, {:.3} s of guest time{}",
        guest_ns as f64 / 1e9,
        if scan.end.is_some() {
            ""
        } else {
            " (to the last complete frame)"
        }
    );
    match &scan.end {
        Some(Event::End {
            reason, state_hash, ..
        }) => println!("ended       {reason}; state hash {}", hex(state_hash)),
        _ => println!("ended       (no end: the recording was cut short)"),
    }
    println!("checkpoints every {} steps", h.checkpoint_every);
    println!("events");
    for (kind, (count, bytes)) in kinds {
        if *bytes > 0 {
            println!("  {kind:<14} {count:>8}  ({bytes} bytes)");
        } else {
            println!("  {kind:<14} {count:>8}");
        }
    }
    out
}

/// The configuration's part of a description.
fn describe_config(out: &mut String, c: &RecordedConfig) {
    // Writing to a String cannot fail.
    macro_rules! println {
        ($($arg:tt)*) => {{ let _ = writeln!(out, $($arg)*); }};
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
}
