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
    /// A disk image (raw or qcow2) for a virtio-blk device; repeatable, the
    /// first is /dev/vda. The guest's writes go to a copy-on-write overlay in
    /// memory and the image is never changed, unless `persist` (raw images
    /// only) writes into the image; `ro` refuses writes.
    #[arg(long = "disk", value_name = "PATH[,ro][,persist]", value_parser = parse_disk)]
    pub disks: Vec<rewind_disk::DiskSpec>,
    /// At exit, save the overlay (the guest's writes) of disk N (counting
    /// --disk options from 0) to FILE; repeatable.
    #[arg(long = "save-overlay", value_name = "N:FILE", value_parser = parse_save_overlay)]
    pub save_overlays: Vec<(usize, PathBuf)>,
    /// A virtio-net device; repeatable. `user` is user-mode NAT (the guest is
    /// 10.0.2.15 by DHCP; 10.0.2.2:PORT reaches the host's 127.0.0.1:PORT);
    /// `hostfwd=H-G` forwards the host's 127.0.0.1:H to the guest's port G.
    /// `tap=NAME` attaches to a TAP interface.
    #[arg(long = "net", value_name = "user[,hostfwd=H-G]|tap=NAME", value_parser = parse_net)]
    pub nets: Vec<rewind_net::NetSpec>,
    /// Where the virtio-rng device's bytes come from: `seeded` (a generator
    /// seeded by the configuration, so runs repeat exactly) or `host` (the
    /// host's /dev/urandom, delivered as inputs). The device is present when
    /// this is given or the machine has any other virtio device [default:
    /// seeded].
    #[arg(long, value_name = "seeded|host", value_parser = parse_entropy)]
    pub entropy: Option<rewind_machine::virtio::rng::Entropy>,
    /// The UART console's backend: `stdio`, `none`, `file:PATH` (output
    /// only), `unix:PATH` (Rewind listens; one client at a time) or
    /// `pipe:PATH` (named pipes PATH.in and PATH.out, made with mkfifo).
    #[arg(long, value_name = "BACKEND", default_value = "stdio", value_parser = console::Backend::parse)]
    pub serial: console::Backend,
    /// Adds a virtio console (the guest's /dev/hvc0) on this backend (the
    /// same forms as --serial).
    #[arg(long, value_name = "BACKEND", value_parser = console::Backend::parse)]
    pub hvc: Option<console::Backend>,
}

fn parse_disk(text: &str) -> Result<rewind_disk::DiskSpec, String> {
    rewind_disk::DiskSpec::parse(text).map_err(|e| e.to_string())
}

fn parse_net(text: &str) -> Result<rewind_net::NetSpec, String> {
    rewind_net::NetSpec::parse(text).map_err(|e| e.to_string())
}

fn parse_save_overlay(text: &str) -> Result<(usize, PathBuf), String> {
    let (n, file) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not N:FILE (e.g. 0:vda.overlay)"))?;
    let n = n
        .parse()
        .map_err(|_| format!("'{n}' in '{text}' is not a disk number (0 for the first --disk)"))?;
    if file.is_empty() {
        return Err(format!("'{text}' names no file: use N:FILE"));
    }
    Ok((n, PathBuf::from(file)))
}

fn parse_entropy(text: &str) -> Result<rewind_machine::virtio::rng::Entropy, String> {
    use rewind_machine::virtio::rng::Entropy;
    match text {
        "seeded" => Ok(Entropy::Seeded),
        "host" => Ok(Entropy::Host),
        _ => Err(format!(
            "'{text}' is not an entropy source: use seeded or host"
        )),
    }
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
    #[error(transparent)]
    Disk(#[from] rewind_disk::DiskError),
    #[error(transparent)]
    Net(#[from] rewind_net::NetError),
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
