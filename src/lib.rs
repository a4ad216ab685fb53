//! `rewind`: the command-line front end of the Rewind virtual machine
//! monitor, as a library so that fuzz targets and tests can drive what the
//! command line drives (replaying a hostile recording, say) in-process. The
//! `rewind` binary is [`main`] and nothing else.
//!
//! Everything about machines (building them from images, recordings and
//! snapshots, driving them over time, recording, replaying, snapshots, the
//! debugger's timeline) is the session layer's (crates/session); here are
//! the options, the terminals, sockets and control socket the session is
//! given, and the reports.

pub mod console;
pub mod control;
pub mod gdb;
pub mod inspect;
pub mod pack;
pub mod record;
pub mod replay;
pub mod report;
pub mod run;
pub mod services;

/// An error for the user: one sentence, printed as `rewind: <sentence>`.
/// The session layer's, since nearly every error a command meets is met
/// building or driving a machine.
pub use rewind_session::SessionError as CliError;

use rewind_session::{size, verify as checkpoint};

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rewind",
    version,
    about = "A deterministic RISC-V 64 virtual machine"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Boot a machine and run it until the guest powers off. With no
    /// --kernel, boots the default guest: Debian's riscv64 kernel, busybox
    /// and OpenSBI, fetched with apt on first use.
    Run(RunArgs),
    /// Run a machine as `run` does and write a recording of it: the
    /// configuration, every input from outside, and state checkpoints.
    Record(RecordArgs),
    /// Run a recording again, bit for bit, with the recorded inputs; checks
    /// every checkpoint and the final state hash.
    Replay(ReplayCli),
    /// Describe a recording (configuration, length, events, checkpoints) or
    /// a snapshot, and the files it carries.
    Inspect(InspectArgs),
    /// Resume a machine from a snapshot (an incremental one finds its
    /// parents among the snapshots beside it) and run it on.
    Restore(RestoreArgs),
    /// Copy a recording or snapshot with the firmware, kernel, initrd and
    /// disk images it names inside, so that it replays or restores on a
    /// host that has none of them.
    Pack(PackArgs),
}

#[derive(clap::Args)]
pub struct PackArgs {
    /// The recording or snapshot.
    pub file: PathBuf,
    /// Where to write the packed copy [default: FILE with `.packed` before
    /// its extension].
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
}

/// Which engine runs guest code (run, record, replay and restore).
#[derive(clap::Args, Clone, Copy, Default)]
pub struct EngineArgs {
    /// How the harts run guest code: `jit` translates hot blocks to x86-64
    /// code (the default on x86-64 hosts), `interp` interprets every
    /// instruction. Results are the same bit for bit: a recording made with
    /// one replays with the other.
    #[arg(long, value_name = "interp|jit", value_parser = parse_engine)]
    pub engine: Option<rewind_hart::Engine>,
    /// For tests: with the jit, translate a block once it has run N times
    /// (0: at its first run; default 8), so that code that runs once is
    /// translated too.
    #[arg(long, value_name = "N", hide = true)]
    pub jit_threshold: Option<u16>,
}

impl EngineArgs {
    /// The engine asked for, or the host's default.
    pub fn engine(&self) -> rewind_hart::Engine {
        self.engine
            .unwrap_or_else(rewind_hart::Engine::default_for_host)
    }

    /// Puts `machine` on the engine asked for.
    pub fn apply(&self, machine: &mut rewind_machine::Machine) -> Result<(), CliError> {
        machine
            .set_engine(self.engine())
            .map_err(|e| CliError::Message(format!("--engine {}: {e}", self.engine().name())))?;
        if let Some(runs) = self.jit_threshold {
            machine.set_translation_threshold(runs);
        }
        Ok(())
    }
}

fn parse_engine(text: &str) -> Result<rewind_hart::Engine, String> {
    rewind_hart::Engine::parse(text)
        .ok_or_else(|| format!("'{text}' is not an engine: use interp or jit"))
}

/// Where to stop a run (run, record, replay and restore).
#[derive(clap::Args, Clone, Copy, Default)]
pub struct StopArgs {
    /// Stop at POSITION: once the harts have taken POSITION steps in all
    /// (instructions retired plus traps entered; the report's `position`),
    /// just before the next. The run ends with exit_reason "stop-at" and
    /// status 0.
    #[arg(long, value_name = "POSITION")]
    pub stop_at: Option<u64>,
}

/// When to take snapshots and how programs drive the run.
#[derive(clap::Args, Clone, Default)]
pub struct SnapshotArgs {
    /// Take a full snapshot at POSITION (as --stop-at counts; see
    /// --snapshot-out).
    #[arg(long, value_name = "POSITION", requires = "snapshot_out")]
    pub snapshot_at: Option<u64>,
    /// Where --snapshot-at writes its snapshot.
    #[arg(long, value_name = "FILE", requires = "snapshot_at")]
    pub snapshot_out: Option<PathBuf>,
    /// Take a snapshot every N steps (positions) into --snapshot-dir: the first
    /// full, each later one holding only the pages written since the one
    /// before.
    #[arg(long, value_name = "N", requires = "snapshot_dir",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_every: Option<u64>,
    /// The directory for --snapshot-every and Ctrl-A s [default for Ctrl-A
    /// s: the current directory].
    #[arg(long, value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// Listen on a unix socket for JSON requests, one per line: {"cmd":
    /// "status"|"pause"|"resume"|"quit"} or {"cmd": "snapshot", "path":
    /// FILE}.
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
}

impl SnapshotArgs {
    /// True when the run may take snapshots (and so must know its
    /// configuration with the hashes of its files).
    pub fn wanted(&self) -> bool {
        self.snapshot_at.is_some()
            || self.snapshot_every.is_some()
            || self.snapshot_dir.is_some()
            || self.control.is_some()
    }
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The snapshot.
    pub snapshot: PathBuf,
    /// Write a JSON report to FILE when the machine stops.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The UART console's backend (as for run).
    #[arg(long, value_name = "BACKEND", default_value = "stdio", value_parser = console::Backend::parse)]
    pub serial: console::Backend,
    /// hvc0's backend, if the machine has hvc0 (as for run) [default: none].
    #[arg(long, value_name = "BACKEND", value_parser = console::Backend::parse)]
    pub hvc: Option<console::Backend>,
    /// Where the disks' overlays are kept (as for run) [default: $TMPDIR].
    #[arg(long, value_name = "DIR")]
    pub overlay_dir: Option<PathBuf>,
    #[command(flatten)]
    pub stop: StopArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub snapshots: SnapshotArgs,
    #[command(flatten)]
    pub debug: gdb::GdbArgs,
}

#[derive(clap::Args)]
pub struct RecordArgs {
    /// The recording to write.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Steps (positions, summed over harts) between state checkpoints.
    #[arg(long, value_name = "N", default_value_t = checkpoint::DEFAULT_EVERY,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: u64,
    /// Carry the firmware, kernel, initrd and disk images inside the
    /// recording, so that it replays on a host that has none of them.
    #[arg(long)]
    pub pack: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(clap::Args)]
pub struct ReplayCli {
    /// The recording.
    pub recording: PathBuf,
    /// Start from this snapshot, taken while the recording was made.
    #[arg(long, value_name = "SNAPSHOT")]
    pub from: Option<PathBuf>,
    /// Write a JSON report to FILE when the replay stops.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Where the UART's output goes: `stdio`, `none` or `file:PATH`.
    #[arg(long, value_name = "BACKEND", default_value = "stdio", value_parser = console::Backend::parse)]
    pub serial: console::Backend,
    /// Where hvc0's output goes, if the recording has it: `stdio`, `none` or
    /// `file:PATH`.
    #[arg(long, value_name = "BACKEND", default_value = "none", value_parser = console::Backend::parse)]
    pub hvc: console::Backend,
    /// Where the disks' overlays are kept (as for run) [default: $TMPDIR].
    #[arg(long, value_name = "DIR")]
    pub overlay_dir: Option<PathBuf>,
    #[command(flatten)]
    pub stop: StopArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub debug: gdb::GdbArgs,
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// The recording or snapshot.
    pub recording: PathBuf,
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
    /// What the guest's RTC shows at boot: seconds since 1970, or `now` for
    /// the host's clock (read once; a recording keeps it) [default:
    /// 2026-01-01T00:00:00Z].
    #[arg(long, value_name = "now|SECONDS")]
    pub rtc_epoch: Option<String>,
    /// A disk image (raw or qcow2) for a virtio-blk device; repeatable, the
    /// first is /dev/vda. The guest's writes go to a copy-on-write overlay (a
    /// sparse file in --overlay-dir) and the image is never changed, unless
    /// `persist` (raw images only) writes into the image; `ro` refuses
    /// writes.
    #[arg(long = "disk", value_name = "PATH[,ro][,persist]", value_parser = parse_disk)]
    pub disks: Vec<rewind_disk::DiskSpec>,
    /// Where the disks' overlays (the guest's writes) are kept: one sparse
    /// file per disk, without a name, so it is gone when Rewind exits,
    /// however it exits; --save-overlay keeps a copy [default: $TMPDIR, or
    /// /tmp].
    #[arg(long, value_name = "DIR")]
    pub overlay_dir: Option<PathBuf>,
    /// At exit, save the overlay (the guest's writes) of disk N (counting
    /// --disk options from 0) to FILE; repeatable.
    #[arg(long = "save-overlay", value_name = "N:FILE", value_parser = parse_disk_file)]
    pub save_overlays: Vec<(usize, PathBuf)>,
    /// Start disk N (counting --disk options from 0) with the overlay saved
    /// in FILE by --save-overlay, which must have been saved for the same
    /// base image; repeatable.
    #[arg(long = "load-overlay", value_name = "N:FILE", value_parser = parse_disk_file)]
    pub load_overlays: Vec<(usize, PathBuf)>,
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
    /// Seeds every generator the guest can observe: virtio-rng, the device
    /// tree's rng-seed (and so the kernel's random pool), and the TCP
    /// sequence numbers of user-mode networking. The same seed repeats
    /// a run; the default is fixed so that runs repeat unless asked.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// The UART console's backend: `stdio`, `none`, `file:PATH` (output
    /// only), `unix:PATH` (Rewind listens; one client at a time) or
    /// `pipe:PATH` (named pipes PATH.in and PATH.out, made with mkfifo).
    #[arg(long, value_name = "BACKEND", default_value = "stdio", value_parser = console::Backend::parse)]
    pub serial: console::Backend,
    /// Adds a virtio console (the guest's /dev/hvc0) on this backend (the
    /// same forms as --serial).
    #[arg(long, value_name = "BACKEND", value_parser = console::Backend::parse)]
    pub hvc: Option<console::Backend>,
    #[command(flatten)]
    pub stop: StopArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub snapshots: SnapshotArgs,
    #[command(flatten)]
    pub debug: gdb::GdbArgs,
}

fn parse_disk(text: &str) -> Result<rewind_disk::DiskSpec, String> {
    rewind_disk::DiskSpec::parse(text).map_err(|e| e.to_string())
}

fn parse_net(text: &str) -> Result<rewind_net::NetSpec, String> {
    rewind_net::NetSpec::parse(text).map_err(|e| e.to_string())
}

fn parse_disk_file(text: &str) -> Result<(usize, PathBuf), String> {
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

/// The `rewind` command: parses the arguments, runs the command, and turns
/// an error into one sentence on stderr and exit status 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args, None),
        Command::Record(args) => run::run(
            args.run,
            Some(record::RecordOptions {
                output: args.output,
                checkpoint_every: args.checkpoint_every,
                pack: args.pack,
            }),
        ),
        Command::Replay(args) if args.debug.gdb.is_some() => {
            if args.report.is_some() || args.stop.stop_at.is_some() {
                Err(CliError::Message(
                    "--report and --stop-at are for a replay that runs by itself; under --gdb, gdb decides where it goes (`monitor hash` gives the state hash anywhere)".to_string(),
                ))
            } else {
                rewind_session::overlay_dir::overlay_dir(args.overlay_dir.as_deref()).and_then(
                    |dir| {
                        gdb::debug_replay(
                            &args.recording,
                            args.from.as_deref(),
                            &dir,
                            (&args.serial, &args.hvc),
                            args.engine,
                            &args.debug,
                        )
                    },
                )
            }
        }
        Command::Replay(args) => replay::replay(replay::ReplayArgs {
            recording: args.recording,
            from: args.from,
            report: args.report,
            serial: args.serial,
            hvc: args.hvc,
            stop_at: args.stop.stop_at,
            overlay_dir: args.overlay_dir,
            engine: args.engine,
        }),
        Command::Inspect(args) => inspect::inspect(&args.recording),
        Command::Restore(args) => run::restore(args),
        Command::Pack(args) => pack::pack(&args.file, args.output.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rewind: {e}");
            ExitCode::from(1)
        }
    }
}
