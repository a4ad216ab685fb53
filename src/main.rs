//! `rewind`: the command-line front end of the Rewind virtual machine monitor.

mod size;

use clap::{Parser, Subcommand};
use rewind_machine::loader::parse_elf;
use rewind_machine::{Machine, MachineConfig, StopReason};
use std::io::Write;
use std::path::PathBuf;
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
    /// Firmware: `none` starts the kernel directly in M-mode.
    #[arg(long, default_value = "none")]
    firmware: String,
    /// The program or kernel to boot (an ELF file).
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// Guest RAM size, e.g. 128M or 1G.
    #[arg(long, default_value = "128M", value_parser = size::parse_mem_size)]
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
}

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

fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    if args.firmware != "none" {
        return Err(CliError::Message(format!(
            "firmware '{}' is not supported yet; use --firmware none",
            args.firmware
        )));
    }
    let kernel = args.kernel.ok_or_else(|| {
        CliError::Message("--firmware none needs a program to run: pass --kernel FILE".into())
    })?;
    let name = kernel.display().to_string();
    let bytes = std::fs::read(&kernel)
        .map_err(|e| CliError::Message(format!("cannot read kernel {name}: {e}")))?;
    let image = parse_elf(&name, &bytes)?;
    let config = MachineConfig {
        mem_size: args.mem,
        harts: args.smp as usize,
        image_name: name,
        segments: image.segments,
        entry: image.entry,
    };
    let mut machine = Machine::new(config)?;
    let mut stdout = std::io::stdout().lock();
    let reason = loop {
        let stop = machine.run_round();
        let output = machine.take_console_output();
        if !output.is_empty() {
            // A closed stdout (e.g. `| head`) must not stop the guest early
            // or panic; the output is simply dropped.
            let _ = stdout.write_all(&output).and_then(|()| stdout.flush());
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
    }
}
