//! `rewind run`: build a machine from the options, run it with the console
//! attached, and report how it ended.

use crate::console::{Command, Console, HELP};
use crate::panic_watch::PanicWatch;
use crate::report::{hex, Report};
use crate::{CliError, RunArgs};
use rewind_machine::loader::parse_kernel;
use rewind_machine::{Firmware, Machine, MachineConfig, Round, StopReason};
use std::io::Write;
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

/// Builds the machine configuration from the options, fetching the default
/// guest when no kernel is given.
fn configure(args: &RunArgs) -> Result<MachineConfig, CliError> {
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
    let config = configure(&args)?;
    let mut machine = Machine::new(config)?;
    let ending = {
        let mut console = Console::new();
        drive(&mut machine, &mut console)
        // The console (and the terminal's raw mode) is dropped here, before
        // anything else is printed.
    };
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
    Ok(ExitCode::from(code))
}

/// Runs the machine with the console attached until it stops.
fn drive(machine: &mut Machine, console: &mut Console) -> Ending {
    let mut stdout = std::io::stdout().lock();
    let mut panic_watch = PanicWatch::default();
    loop {
        let round = machine.run_round();
        let output = machine.take_console_output();
        if !output.is_empty() {
            // A closed stdout (e.g. `| head`) must not stop the guest early
            // or panic; the output is simply dropped.
            let _ = stdout.write_all(&output).and_then(|()| stdout.flush());
            if panic_watch.feed(&output) {
                return Ending::Panic(panic_watch.reason().unwrap_or_default().trim().to_string());
            }
        }
        if console.interrupted() {
            return Ending::Interrupted;
        }
        let mut commands = console.poll();
        match round {
            Round::Stopped(reason) => return Ending::Stopped(reason),
            Round::Running => {}
            Round::Idle { wake } => {
                let now = machine.guest_time_ns();
                let space = machine.console_input_space();
                if console.has_input() && space > 0 {
                    // Deliver below; the guest wakes without skipping time.
                } else if console.exhausted() || (!console.interactive() && wake != u64::MAX) {
                    // Nothing more can come (or it would not be paced anyway):
                    // jump to the next deadline.
                    if wake == u64::MAX {
                        return Ending::Stopped(StopReason::Deadlock);
                    }
                    machine.skip_to(wake);
                } else {
                    // Wait for the user (or the pipe) no longer than the guest
                    // would sleep, so an idle guest keeps real time.
                    let until_wake = Duration::from_nanos(wake.saturating_sub(now));
                    let waited = until_wake.min(MAX_IDLE_WAIT);
                    commands.extend(console.wait(waited));
                    if !console.has_input() && wake != u64::MAX {
                        machine.skip_to(now.saturating_add(waited.as_nanos() as u64));
                    }
                }
            }
        }
        for command in commands {
            match command {
                Command::Quit => return Ending::Quit,
                Command::Help => {
                    let _ = stdout
                        .write_all(HELP.as_bytes())
                        .and_then(|()| stdout.flush());
                }
            }
        }
        let space = machine.console_input_space();
        if space > 0 && console.has_input() {
            let bytes = console.take(space);
            machine.push_console_input(&bytes);
        }
    }
}
