//! `rewind run`: build a machine from the options, run it with the console
//! attached, and report how it ended.

use crate::console::{Command, Consoles, PortId, HELP};
use crate::panic_watch::PanicWatch;
use crate::report::{hex, Report};
use crate::{CliError, RunArgs};
use rewind_machine::loader::parse_kernel;
use rewind_machine::virtio::blk::{BackendError, BlockBackend};
use rewind_machine::virtio::net::default_mac;
use rewind_machine::virtio::rng::Entropy;
use rewind_machine::virtio::VirtioConfig;
use rewind_machine::{Firmware, Machine, MachineConfig, Round, StopReason};
use rewind_net::{NetBackend, NetSpec, Tap, UserNet, UserNetConfig};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Where Debian's opensbi package puts the generic fw_dynamic firmware.
const HOST_OPENSBI: &str = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin";

/// 2026-01-01T00:00:00Z: what the guest's RTC reads at boot. Guest wall time
/// is part of the configuration, never read from the host.
const DEFAULT_RTC_EPOCH_NS: u64 = 1_767_225_600 * 1_000_000_000;

/// The default kernel command line. `earlycon` makes the kernel print from its
/// first instructions, so a kernel that dies before its console driver starts
/// (e.g. with too little memory) still shows why, and its panic is noticed.
const DEFAULT_APPEND: &str = "console=ttyS0 earlycon";

/// The longest real-time wait while the guest idles at an interactive console
/// (so signals and Ctrl-A are noticed promptly).
const MAX_IDLE_WAIT: Duration = Duration::from_millis(100);
/// The same with network devices, whose backends are polled, not waited on.
const NET_IDLE_WAIT: Duration = Duration::from_millis(1);

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|e| CliError::Message(format!("cannot read {what} {}: {e}", path.display())))
}

fn firmware_from(choice: Option<&str>, default: Option<&Path>) -> Result<Firmware, CliError> {
    let binary = |path: &Path| -> Result<Firmware, CliError> {
        Ok(Firmware::Binary {
            name: path.display().to_string(),
            bytes: read_file("firmware", path)?,
        })
    };
    let host = Path::new(HOST_OPENSBI);
    match choice {
        Some("none") => Ok(Firmware::None),
        Some("builtin") => Ok(Firmware::Builtin),
        Some("opensbi") => match default {
            Some(path) => binary(path),
            None if host.exists() => binary(host),
            None => Err(CliError::Message(format!(
                "OpenSBI is not installed ({HOST_OPENSBI} is missing); install Debian's opensbi package or use --firmware builtin"
            ))),
        },
        Some(path) => binary(Path::new(path)),
        None => match default {
            Some(path) => binary(path),
            None if host.exists() => binary(host),
            None => Ok(Firmware::Builtin),
        },
    }
}

/// A disk image as a virtio-blk backend.
struct DiskBackend(rewind_disk::Disk);

impl BlockBackend for DiskBackend {
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn read_only(&self) -> bool {
        self.0.read_only()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        Ok(self.0.read_at(offset, buf)?)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        Ok(self.0.write_at(offset, data)?)
    }
    fn flush(&mut self) -> Result<(), BackendError> {
        Ok(self.0.flush()?)
    }
}

/// A network backend and the frames it produced that the guest has not
/// taken yet.
struct NetPort {
    backend: Box<dyn NetBackend>,
    backlog: VecDeque<Vec<u8>>,
}

/// Frames from a backend kept while the guest has no receive buffer; more
/// are left in the backend (which drops what it cannot hold).
const NET_BACKLOG: usize = 256;

/// Opens the --disk images and checks the --save-overlay options against them.
fn open_disks(args: &RunArgs) -> Result<Vec<Box<dyn BlockBackend>>, CliError> {
    for (n, file) in &args.save_overlays {
        let Some(spec) = args.disks.get(*n) else {
            let given = match args.disks.len() {
                0 => "no --disk is given".to_string(),
                1 => "only disk 0 is given".to_string(),
                k => format!("only disks 0 to {} are given", k - 1),
            };
            return Err(CliError::Message(format!(
                "--save-overlay {n}:{} names disk {n}, but {given}",
                file.display()
            )));
        };
        if spec.persist {
            return Err(CliError::Message(format!(
                "--save-overlay {n}:{}: disk {n} is opened with persist, so its writes go into the image and there is no overlay to save",
                file.display()
            )));
        }
    }
    let mut disks: Vec<Box<dyn BlockBackend>> = Vec::new();
    for spec in &args.disks {
        disks.push(Box::new(DiskBackend(rewind_disk::Disk::open(spec)?)));
    }
    Ok(disks)
}

/// Opens the --net backends; returns them with each device's MAC address.
fn open_nets(args: &RunArgs) -> Result<(Vec<NetPort>, Vec<[u8; 6]>), CliError> {
    let mut ports = Vec::new();
    let mut macs = Vec::new();
    for (i, spec) in args.nets.iter().enumerate() {
        let (backend, mac): (Box<dyn NetBackend>, [u8; 6]) = match spec {
            NetSpec::User(cfg) => {
                let mut cfg = cfg.clone();
                if cfg.guest_mac == UserNetConfig::default().guest_mac {
                    cfg.guest_mac = default_mac(i);
                }
                let mac = cfg.guest_mac;
                (Box::new(UserNet::new(cfg)?), mac)
            }
            NetSpec::Tap(name) => (Box::new(Tap::open(name)?), default_mac(i)),
        };
        ports.push(NetPort {
            backend,
            backlog: VecDeque::new(),
        });
        macs.push(mac);
    }
    Ok((ports, macs))
}

/// Builds the machine configuration from the options, fetching the default
/// guest when no kernel is given.
fn configure(args: &RunArgs, net_macs: Vec<[u8; 6]>) -> Result<MachineConfig, CliError> {
    let (kernel_path, initrd_path, default_firmware, append) = match &args.kernel {
        Some(kernel) => (kernel.clone(), args.initrd.clone(), None, DEFAULT_APPEND),
        None => {
            let cache = rewind_guest::default_cache_dir();
            let mut progress = |line: &str| eprintln!("rewind: {line}");
            let guest = rewind_guest::default_guest(&cache, &mut progress)?;
            let initrd = args.initrd.clone().unwrap_or(guest.initrd);
            (
                guest.kernel,
                Some(initrd),
                Some(guest.firmware),
                rewind_guest::DEFAULT_CMDLINE,
            )
        }
    };
    let firmware = firmware_from(args.firmware.as_deref(), default_firmware.as_deref())?;
    let kernel_name = kernel_path.display().to_string();
    let kernel = parse_kernel(&kernel_name, &read_file("kernel", &kernel_path)?)?;
    let initrd = match &initrd_path {
        Some(path) => Some(read_file("initrd", path)?),
        None => None,
    };
    Ok(MachineConfig {
        mem_size: args.mem,
        harts: args.smp as usize,
        firmware,
        kernel: Some(kernel),
        initrd,
        bootargs: args.append.clone().unwrap_or_else(|| append.to_string()),
        rtc_epoch_ns: DEFAULT_RTC_EPOCH_NS,
        seed: 0,
        virtio: VirtioConfig {
            rng: match args.entropy {
                Some(entropy) => Some(entropy),
                // Entropy for any guest that has virtio devices anyway (and
                // so loads the virtio drivers).
                None if !args.disks.is_empty() || !net_macs.is_empty() || args.hvc.is_some() => {
                    Some(Entropy::Seeded)
                }
                None => None,
            },
            net_macs,
            hvc: args.hvc.is_some(),
        },
    })
}

/// How a run ended, before it is turned into an exit status.
enum Ending {
    Stopped(StopReason),
    Panic(String),
    Quit,
    Interrupted,
}

pub fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    #[allow(clippy::disallowed_types)] // wall time for the report only
    let started = std::time::Instant::now();
    let disks = open_disks(&args)?;
    let (mut nets, net_macs) = open_nets(&args)?;
    let config = configure(&args, net_macs)?;
    let entropy = match args.entropy {
        Some(Entropy::Host) => Some(File::open("/dev/urandom").map_err(|e| {
            CliError::Message(format!("cannot open /dev/urandom for --entropy host: {e}"))
        })?),
        _ => None,
    };
    let mut machine = Machine::with_disks(config, disks)?;
    let ending = {
        let mut consoles =
            Consoles::new(&args.serial, args.hvc.as_ref()).map_err(CliError::Message)?;
        drive(&mut machine, &mut consoles, &mut nets, entropy)
        // The consoles (and the terminal's raw mode) are dropped here, before
        // anything else is printed.
    };
    let overlay_error = save_disks(&mut machine, &args);
    let (reason, code, error) = match ending {
        Ending::Stopped(StopReason::PowerOff) => ("poweroff", 0, None),
        // As QEMU's test finisher: the exit status is the guest's code.
        Ending::Stopped(StopReason::Fail(c)) => ("fail", c as u8, None),
        Ending::Stopped(StopReason::Deadlock) => (
            "deadlock",
            1,
            Some("the guest stopped: every hart waits for an interrupt that nothing can raise".to_string()),
        ),
        Ending::Stopped(StopReason::FirmwareTrap { hart, mcause, mepc, mtval }) => (
            "firmware-trap",
            1,
            Some(format!(
                "hart {hart} trapped into M-mode, where the built-in firmware runs no code (mcause {mcause:#x}, mepc {mepc:#x}, mtval {mtval:#x})"
            )),
        ),
        Ending::Panic(line) => ("kernel-panic", 1, Some(format!("the guest kernel panicked: {line}"))),
        Ending::Quit => ("quit", 0, None),
        Ending::Interrupted => ("interrupted", 130, Some("interrupted by a signal".to_string())),
    };
    if let Some(path) = &args.report {
        let report = Report {
            exit_reason: reason,
            exit_code: code,
            instructions_retired: machine.instret(),
            guest_time_ns: machine.guest_time_ns(),
            wall_seconds: started.elapsed().as_secs_f64(),
            state_hash: hex(&machine.state_hash()),
        };
        report.write(path).map_err(CliError::Message)?;
    }
    if let Some(message) = error {
        eprintln!("\nrewind: {message}");
    }
    if let Some(message) = overlay_error {
        eprintln!("rewind: {message}");
        return Ok(ExitCode::from(if code == 0 { 1 } else { code }));
    }
    Ok(ExitCode::from(code))
}

/// Flushes every disk and saves the overlays --save-overlay asked for;
/// returns the first failure as a sentence.
fn save_disks(machine: &mut Machine, args: &RunArgs) -> Option<String> {
    let mut first_error = None;
    for n in 0..args.disks.len() {
        if let Some(Err(e)) = machine.disk_mut(n).map(|d| d.flush()) {
            first_error.get_or_insert(format!("cannot flush disk {n}: {e}"));
        }
    }
    for (n, file) in &args.save_overlays {
        let disk = machine
            .disk_mut(*n)
            .and_then(|d| (d as &mut dyn std::any::Any).downcast_mut::<DiskBackend>());
        if let Some(DiskBackend(disk)) = disk {
            if let Err(e) = disk.save_overlay(file) {
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    first_error
}

/// Runs the machine with its consoles and network backends attached until
/// it stops.
fn drive(
    machine: &mut Machine,
    consoles: &mut Consoles,
    nets: &mut [NetPort],
    mut entropy: Option<File>,
) -> Ending {
    let mut serial_watch = PanicWatch::default();
    let mut hvc_watch = PanicWatch::default();
    loop {
        let round = machine.run_round();
        // Outputs first: what the guest did in this round.
        for (id, watch) in [
            (PortId::Serial, &mut serial_watch),
            (PortId::Hvc, &mut hvc_watch),
        ] {
            let output = match id {
                PortId::Serial => machine.take_console_output(),
                PortId::Hvc => machine.take_hvc_output(),
            };
            if !output.is_empty() {
                consoles.write(id, &output);
                if watch.feed(&output) {
                    return Ending::Panic(watch.reason().unwrap_or_default().trim().to_string());
                }
            }
        }
        for (i, net) in nets.iter_mut().enumerate() {
            for frame in machine.take_net_frames(i) {
                net.backend.send(&frame);
            }
        }
        for warning in machine.take_warnings() {
            eprintln!("rewind: warning: {warning}");
        }
        if consoles.interrupted() {
            return Ending::Interrupted;
        }
        let mut commands = consoles.poll();
        poll_nets(nets);
        if let Round::Stopped(reason) = round {
            return Ending::Stopped(reason);
        }
        // Inputs enter here, between rounds, and only here.
        let delivered = deliver(machine, consoles, nets, entropy.as_mut());
        if let Round::Idle { wake } = round {
            if !delivered {
                let more_can_come = !consoles.exhausted() || !nets.is_empty();
                let paced = consoles.live() || !nets.is_empty();
                if !more_can_come || (!paced && wake != u64::MAX) {
                    // Nothing more can come (or it would not be paced anyway):
                    // jump to the next deadline.
                    if wake == u64::MAX {
                        return Ending::Stopped(StopReason::Deadlock);
                    }
                    machine.skip_to(wake);
                } else {
                    // Wait for input no longer than the guest would sleep, and
                    // let guest time follow real time meanwhile, so an idle
                    // guest keeps real time (its network timers too).
                    let now = machine.guest_time_ns();
                    let until_wake = Duration::from_nanos(wake.saturating_sub(now));
                    let limit = if nets.is_empty() {
                        MAX_IDLE_WAIT
                    } else {
                        NET_IDLE_WAIT
                    };
                    #[allow(clippy::disallowed_types)] // pacing only; see DESIGN.md
                    let waiting = std::time::Instant::now();
                    commands.extend(consoles.wait(until_wake.min(limit)));
                    let waited = waiting.elapsed().min(until_wake);
                    if wake != u64::MAX {
                        machine.skip_to(now.saturating_add(waited.as_nanos() as u64));
                    }
                }
            }
        }
        for command in commands {
            match command {
                Command::Quit => return Ending::Quit,
                Command::Help => {
                    let mut stdout = std::io::stdout().lock();
                    let _ = stdout
                        .write_all(HELP.as_bytes())
                        .and_then(|()| stdout.flush());
                }
            }
        }
    }
}

/// Lets each network backend do its host-side work and collects the frames
/// it has for the guest.
fn poll_nets(nets: &mut [NetPort]) {
    for net in nets {
        net.backend.poll();
        while net.backlog.len() < NET_BACKLOG {
            match net.backend.recv() {
                Some(frame) => net.backlog.push_back(frame),
                None => break,
            }
        }
    }
}

/// Hands the machine whatever input it can take now; true if it took any.
fn deliver(
    machine: &mut Machine,
    consoles: &mut Consoles,
    nets: &mut [NetPort],
    entropy: Option<&mut File>,
) -> bool {
    let mut delivered = false;
    let space = machine.console_input_space();
    if space > 0 && consoles.has_input(PortId::Serial) {
        let bytes = consoles.peek(PortId::Serial, space);
        let taken = machine.push_console_input(&bytes);
        consoles.consume(PortId::Serial, taken);
        delivered |= taken > 0;
    }
    if consoles.has_input(PortId::Hvc) {
        let bytes = consoles.peek(PortId::Hvc, 4096);
        let taken = machine.push_hvc_input(&bytes);
        consoles.consume(PortId::Hvc, taken);
        delivered |= taken > 0;
    }
    for (i, net) in nets.iter_mut().enumerate() {
        while let Some(frame) = net.backlog.front() {
            if !machine.push_net_frame(i, frame) {
                break;
            }
            net.backlog.pop_front();
            delivered = true;
        }
    }
    if let Some(source) = entropy {
        let wanted = machine.entropy_wanted();
        if wanted > 0 {
            let mut bytes = vec![0u8; wanted];
            if source.read_exact(&mut bytes).is_ok() {
                delivered |= machine.push_entropy(&bytes) > 0;
            }
        }
    }
    delivered
}
