//! `rewind`: the command-line front end of the Rewind virtual machine monitor.

mod panic_watch;
mod size;

use clap::{Parser, Subcommand};
use rewind_machine::loader::parse_kernel;
use rewind_machine::{Firmware, Machine, MachineConfig, StopReason};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rewind",
    version,
    about = "A deterministic RISC-V 64 virtual machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot a machine and run it until the guest powers off.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// M-mode firmware: `opensbi` (Debian's fw_dynamic.bin; the default when
    /// present), `builtin` (Rewind answers SBI calls itself), `none` (the
    /// kernel starts in M-mode), or the path of a fw_dynamic.bin.
    #[arg(long)]
    firmware: Option<String>,
    /// The kernel or bare-metal program: an ELF file or a RISC-V Linux Image.
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// An initial RAM disk for the kernel.
    #[arg(long)]
    initrd: Option<PathBuf>,
    /// The kernel command line.
    #[arg(long, default_value = "console=ttyS0")]
    append: String,
    /// Guest RAM size, e.g. 128M or 1G.
    #[arg(long, default_value = "512M", value_parser = size::parse_mem_size)]
    mem: u64,
    /// Number of harts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    smp: u16,
}

/// An error for the user: one sentence, printed as `rewind: <sentence>`.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Load(#[from] rewind_machine::loader::LoadError),
    #[error(transparent)]
    Machine(#[from] rewind_machine::MachineError),
}

/// 2026-01-01T00:00:00Z: what the guest's RTC reads at boot unless told otherwise.
const DEFAULT_RTC_EPOCH_NS: u64 = 1_767_225_600 * 1_000_000_000;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rewind: {e}");
            ExitCode::from(1)
        }
    }
}

/// Where Debian's opensbi package puts the generic fw_dynamic firmware.
const HOST_OPENSBI: &str = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin";

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|e| CliError::Message(format!("cannot read {what} {}: {e}", path.display())))
}

fn firmware_from(choice: Option<&str>) -> Result<Firmware, CliError> {
    let binary = |path: &Path| -> Result<Firmware, CliError> {
        Ok(Firmware::Binary {
            name: path.display().to_string(),
            bytes: read_file("firmware", path)?,
        })
    };
    match choice {
        Some("none") => Ok(Firmware::None),
        Some("builtin") => Ok(Firmware::Builtin),
        Some("opensbi") => {
            let path = Path::new(HOST_OPENSBI);
            if !path.exists() {
                return Err(CliError::Message(format!(
                    "OpenSBI is not installed ({HOST_OPENSBI} is missing); install Debian's opensbi package or use --firmware builtin"
                )));
            }
            binary(path)
        }
        Some(path) => binary(Path::new(path)),
        None if Path::new(HOST_OPENSBI).exists() => binary(Path::new(HOST_OPENSBI)),
        None => Ok(Firmware::Builtin),
    }
}

fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let firmware = firmware_from(args.firmware.as_deref())?;
    let kernel_path = args
        .kernel
        .ok_or_else(|| CliError::Message("no kernel to boot: pass --kernel FILE".into()))?;
    let kernel_name = kernel_path.display().to_string();
    let kernel = parse_kernel(&kernel_name, &read_file("kernel", &kernel_path)?)?;
    let initrd = match &args.initrd {
        Some(path) => Some(read_file("initrd", path)?),
        None => None,
    };
    let config = MachineConfig {
        mem_size: args.mem,
        harts: args.smp as usize,
        firmware,
        kernel: Some(kernel),
        initrd,
        bootargs: args.append,
        // Guest wall-clock time is part of the configuration, never the host's.
        rtc_epoch_ns: DEFAULT_RTC_EPOCH_NS,
        seed: 0,
    };
    let mut machine = Machine::new(config)?;
    let mut stdout = std::io::stdout().lock();
    let mut panic_watch = panic_watch::PanicWatch::default();
    let reason = loop {
        let stop = machine.run_round();
        let output = machine.take_console_output();
        if !output.is_empty() {
            // A closed stdout (e.g. `| head`) must not stop the guest early
            // or panic; the output is simply dropped.
            let _ = stdout.write_all(&output).and_then(|()| stdout.flush());
            if panic_watch.feed(&output) {
                let _ = stdout.write_all(b"\n");
                return Err(CliError::Message(format!(
                    "the guest kernel panicked: {}",
                    panic_watch.reason().unwrap_or_default().trim()
                )));
            }
        }
        if let Some(reason) = stop {
            break reason;
        }
    };
    match reason {
        StopReason::PowerOff => Ok(ExitCode::SUCCESS),
        // As QEMU's test finisher: the exit status is the guest's code.
        StopReason::Fail(code) => Ok(ExitCode::from(code as u8)),
        StopReason::Deadlock => Err(CliError::Message(
            "the guest stopped: every hart waits for an interrupt that nothing can raise".into(),
        )),
        StopReason::FirmwareTrap {
            hart,
            mcause,
            mepc,
            mtval,
        } => Err(CliError::Message(format!(
            "hart {hart} trapped into M-mode, where the built-in firmware runs no code (mcause {mcause:#x}, mepc {mepc:#x}, mtval {mtval:#x})"
        ))),
    }
}
