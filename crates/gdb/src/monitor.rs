//! `monitor` commands: where the machine is in time, going anywhere in
//! it, and what gdb's own commands cannot name (physical memory).

use crate::target::GdbTarget;
use rewind_hart::{Space, Watch, WatchKind};
use rewind_session::current_hart;
use std::fmt::Write;

pub const HELP: &str = "\
Rewind's monitor commands:
  monitor when                    the current position (steps all harts have
                                  taken), then the hart about to step and the
                                  guest time
  monitor seek POSITION           go to POSITION, forward or backward (then
                                  `flushregs` so that gdb reads registers again)
  monitor info                    the session: its bounds and checkpoints
  monitor hash                    the machine's state hash here (as --report
                                  gives it at the end of a run)
  monitor phys read ADDR LEN      physical memory, in hex (RAM only)
  monitor phys write ADDR HEX     write bytes (hex) to physical memory
  monitor pwatch ADDR LEN [r|w|a] stop on a read, write (default) or either of
                                  physical addresses, by any hart
  monitor pwatch clear            drop every physical watchpoint
  monitor help                    this text
Positions count steps: instructions retired and traps entered, on all harts.";

/// Runs one command; returns what to print.
pub fn run(target: &mut GdbTarget<'_>, command: &str) -> String {
    let words: Vec<&str> = command.split_whitespace().collect();
    match words.as_slice() {
        [] | ["help"] => HELP.to_string(),
        ["when"] => when(target),
        ["seek", position] => match parse(position) {
            Some(position) => match target.debuggee.seek(position) {
                Ok(()) => format!(
                    "{}\n(type `flushregs` for gdb to read registers again)",
                    when(target)
                ),
                Err(e) => format!("cannot seek: {e}"),
            },
            None => format!("not a position: {position}"),
        },
        ["info"] => target.debuggee.describe(),
        ["hash"] => hex(&target.debuggee.machine().state_hash()),
        ["phys", "read", addr, len] => match (parse(addr), parse(len)) {
            (Some(addr), Some(len)) if len <= 4096 => phys_read(target, addr, len as usize),
            _ => "usage: monitor phys read ADDR LEN (LEN at most 4096)".to_string(),
        },
        ["phys", "write", addr, hex] => match (parse(addr), unhex(hex)) {
            (Some(addr), Some(bytes)) => phys_write(target, addr, &bytes),
            _ => "usage: monitor phys write ADDR HEXBYTES".to_string(),
        },
        ["pwatch", "clear"] => {
            target.watches.retain(|w| w.space != Space::Physical);
            target.push_hooks();
            "physical watchpoints cleared".to_string()
        }
        ["pwatch", addr, len, rest @ ..] => {
            let kind = match rest {
                [] | ["w"] => Some(WatchKind::Write),
                ["r"] => Some(WatchKind::Read),
                ["a"] => Some(WatchKind::Access),
                _ => None,
            };
            match (parse(addr), parse(len), kind) {
                (Some(start), Some(len), Some(kind)) if len > 0 => {
                    target.watches.push(Watch {
                        start,
                        len,
                        kind,
                        space: Space::Physical,
                    });
                    target.push_hooks();
                    format!(
                        "watching physical {start:#x}..{:#x}",
                        start.saturating_add(len)
                    )
                }
                _ => "usage: monitor pwatch ADDR LEN [r|w|a]".to_string(),
            }
        }
        _ => format!("unknown command `{command}`; `monitor help` lists them"),
    }
}

/// `monitor when`: the position first, so scripts can take the number.
pub fn when(target: &GdbTarget<'_>) -> String {
    let m = target.debuggee.machine();
    let hart = current_hart(m);
    format!(
        "{} (hart {hart}, guest time {} ns)",
        m.position(),
        m.harts[hart].clock()
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn parse(word: &str) -> Option<u64> {
    let word = word.replace('_', "");
    match word.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => word.parse().ok(),
    }
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    if !hex.len().is_multiple_of(2) || hex.len() > 8192 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn phys_read(target: &GdbTarget<'_>, addr: u64, len: usize) -> String {
    let mut bytes = vec![0u8; len];
    if target
        .debuggee
        .machine()
        .board
        .ram
        .read_bytes(addr, &mut bytes)
        .is_none()
    {
        return format!(
            "{addr:#x}..{:#x} is not all RAM",
            addr.saturating_add(len as u64)
        );
    }
    let mut out = String::new();
    for (i, row) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:#018x}:", addr + 16 * i as u64);
        for b in row {
            let _ = write!(out, " {b:02x}");
        }
        out.push('\n');
    }
    out
}

fn phys_write(target: &mut GdbTarget<'_>, addr: u64, bytes: &[u8]) -> String {
    match target.debuggee.edit() {
        Err(why) => why,
        Ok(machine) => match machine.board.ram.write_bytes(addr, bytes) {
            Some(()) => format!("wrote {} bytes at {addr:#x}", bytes.len()),
            None => format!(
                "{addr:#x}..{:#x} is not all RAM",
                addr.saturating_add(bytes.len() as u64)
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_decimal_or_hex() {
        assert_eq!(parse("1_000"), Some(1000));
        assert_eq!(parse("0x80000000"), Some(0x8000_0000));
        assert_eq!(parse("x"), None);
        assert_eq!(unhex("0a0B"), Some(vec![10, 11]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
