//! `rewind`: the command-line front end of the Rewind virtual machine monitor.

mod console;
mod panic_watch;
mod report;
mod run;
mod size;

use clap::{Parser, Subcommand};
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
    /// Boot a machine and run it until the guest powers off. With no
    /// --kernel, boots the default guest: Debian's riscv64 kernel, busybox
    /// and OpenSBI, fetched with apt on first use.
    Run(RunArgs),
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// M-mode firmware: `opensbi` (Debian's fw_dynamic.bin; the default when
    /// present), `builtin` (Rewind answers SBI calls itself), `none` (the
    /// kernel starts in M-mode), or the path of a fw_dynamic.bin.
    #[arg(long)]
    pub firmware: Option<String>,
    /// The kernel or bare-metal program: an ELF file or a RISC-V Linux Image.
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// An initial RAM disk for the kernel.
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// The kernel command line [default: console=ttyS0 earlycon].
    #[arg(long)]
    pub append: Option<String>,
    /// Guest RAM size, e.g. 128M or 1G.
    #[arg(long, default_value = "512M", value_parser = size::parse_mem_size)]
    pub mem: u64,
    /// Number of harts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub smp: u16,
    /// Write a JSON report to FILE when the machine stops.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// An error for the user: one sentence, printed as `rewind: <sentence>`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Load(#[from] rewind_machine::loader::LoadError),
    #[error(transparent)]
    Machine(#[from] rewind_machine::MachineError),
    #[error(transparent)]
    Guest(#[from] rewind_guest::GuestError),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rewind: {e}");
            ExitCode::from(1)
        }
    }
}
