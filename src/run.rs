//! `rewind run` and `rewind record`: build a machine from the options, run
//! it with the console attached (writing a recording if asked), and report
//! how it ended.

use crate::console::Consoles;
use crate::control::Control;
use crate::record::{RecordOptions, Recorder};
use crate::report::{hex, Report};
use crate::services::Services;
use crate::{CliError, RunArgs};
use rewind_machine::virtio::blk::BlockBackend;
use rewind_machine::virtio::net::default_mac;
use rewind_machine::virtio::rng::Entropy;
use rewind_machine::virtio::VirtioConfig;
use rewind_machine::Machine;
use rewind_net::{NetBackend, NetSpec, Tap, UserNet, UserNetConfig};
use rewind_session::build::{image_disk, machine_config, DiskBackend, Shape, DEFAULT_RTC_EPOCH_NS};
use rewind_session::drive::{drive, Ending};
use rewind_session::images;
use rewind_session::live::{LiveInputs, NetPort};
use rewind_session::snapshot::{SnapshotOptions, Snapshotter};
use std::collections::VecDeque;
use std::fs::File;
use std::process::ExitCode;

/// Opens the --disk images, checks the --save-overlay and --load-overlay
/// options against them, and loads the overlays asked for.
fn open_disks(args: &RunArgs) -> Result<Vec<rewind_disk::Disk>, CliError> {
    let overlay_options = args
        .save_overlays
        .iter()
        .map(|o| ("--save-overlay", o))
        .chain(args.load_overlays.iter().map(|o| ("--load-overlay", o)));
    for (option, (n, file)) in overlay_options {
        let Some(spec) = args.disks.get(*n) else {
            let given = match args.disks.len() {
                0 => "no --disk is given".to_string(),
                1 => "only disk 0 is given".to_string(),
                k => format!("only disks 0 to {} are given", k - 1),
            };
            return Err(CliError::Message(format!(
                "{option} {n}:{} names disk {n}, but {given}",
                file.display()
            )));
        };
        if spec.persist {
            return Err(CliError::Message(format!(
                "{option} {n}:{}: disk {n} is opened with persist, so its writes go into the image and it has no overlay",
                file.display()
            )));
        }
    }
    let overlay_dir = rewind_session::overlay_dir::overlay_dir(args.overlay_dir.as_deref())?;
    let mut disks = Vec::new();
    for spec in &args.disks {
        disks.push(rewind_disk::Disk::open_in(spec, &overlay_dir)?);
    }
    for (n, file) in &args.load_overlays {
        disks[*n].load_overlay(file)?;
    }
    Ok(disks)
}

/// Opens the --net backends; returns them with each device's MAC address.
fn open_nets(args: &RunArgs) -> Result<(Vec<NetPort>, Vec<[u8; 6]>), CliError> {
    let seed = args.seed;
    let mut ports = Vec::new();
    let mut macs = Vec::new();
    for (i, spec) in args.nets.iter().enumerate() {
        let mac = match spec {
            NetSpec::User(cfg) if cfg.guest_mac != UserNetConfig::default().guest_mac => {
                cfg.guest_mac
            }
            _ => default_mac(i),
        };
        ports.push(open_net(spec, mac, seed)?);
        macs.push(mac);
    }
    Ok((ports, macs))
}

/// Opens the backend of a network device whose guest has address `mac`;
/// user-mode networking's generator (TCP sequence numbers the guest sees)
/// is seeded from the machine's `seed`.
fn open_net(spec: &NetSpec, mac: [u8; 6], seed: u64) -> Result<NetPort, CliError> {
    let backend: Box<dyn NetBackend> = match spec {
        NetSpec::User(cfg) => Box::new(UserNet::new(UserNetConfig {
            guest_mac: mac,
            random_seed: rewind_net::UserNetConfig::default().random_seed ^ seed,
            ..cfg.clone()
        })?),
        NetSpec::Tap(name) => Box::new(Tap::open(name)?),
    };
    Ok(NetPort {
        backend,
        backlog: VecDeque::new(),
    })
}

/// The RTC epoch from `--rtc-epoch`: seconds since 1970, or `now` (the
/// host's clock, read once here; a recording keeps the value).
fn rtc_epoch(arg: Option<&str>) -> Result<u64, CliError> {
    match arg {
        None => Ok(DEFAULT_RTC_EPOCH_NS),
        Some("now") => {
            #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
            // configuration, recorded
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| CliError::Message("the host clock is before 1970".to_string()))?;
            Ok(now.as_secs() * 1_000_000_000)
        }
        Some(text) => text
            .parse::<u64>()
            .ok()
            .and_then(|s| s.checked_mul(1_000_000_000))
            .ok_or_else(|| {
                CliError::Message(format!(
                    "--rtc-epoch {text} is neither `now` nor a number of seconds since 1970"
                ))
            }),
    }
}

pub fn run(args: RunArgs, record: Option<RecordOptions>) -> Result<ExitCode, CliError> {
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)] // wall time for the report only
    let started = std::time::Instant::now();
    // Under gdb a live run is recorded (to a file of its own if the user
    // asked for none), so that it can go backward.
    let (record, gdb_recording) = match (record, &args.debug.gdb) {
        (None, Some(_)) => {
            let (options, file) = gdb_recording(args.overlay_dir.as_deref())?;
            (Some(options), Some(file))
        }
        (record, _) => (record, None),
    };
    let mut disks = open_disks(&args)?;
    let (nets, net_macs) = open_nets(&args)?;
    let boot = images::from_options(
        args.firmware.as_deref(),
        args.kernel.as_deref(),
        args.initrd.as_deref(),
        args.append.as_deref(),
    )?;
    let shape = Shape {
        mem_size: args.mem,
        harts: args.smp as usize,
        rtc_epoch_ns: rtc_epoch(args.rtc_epoch.as_deref())?,
        seed: args.seed,
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
    };
    // Recordings and snapshots name the files the machine is built from by
    // their hashes (which costs a read of every disk image).
    let recorded_config = if record.is_some() || args.snapshots.wanted() {
        Some(crate::record::recorded_config(
            &args, &boot, &shape, &mut disks,
        )?)
    } else {
        None
    };
    let config = machine_config(&boot, shape)?;
    let backends: Vec<Box<dyn BlockBackend>> = disks
        .into_iter()
        .map(|d| Box::new(DiskBackend::new(d)) as Box<dyn BlockBackend>)
        .collect();
    let mut machine = Machine::with_disks(config, backends)?;
    args.engine.apply(&mut machine)?;
    let recorder = match (&record, &recorded_config) {
        (Some(options), Some(config)) => Some(crate::record::create_recorder(
            options,
            config.clone(),
            &mut machine,
        )?),
        _ => None,
    };
    let mut services = services(&args.snapshots, recorded_config, &machine)?;
    if let (Some(recorder), Some(snapshots)) = (&recorder, &mut services.snapshots) {
        snapshots.within_recording(recorder.header_hash());
    }
    let inputs = LiveInputs::new(nets, open_entropy(args.entropy)?, recorder);
    let session = Session {
        serial: &args.serial,
        hvc: args.hvc.as_ref(),
        report: args.report.as_deref(),
        started,
        stop_at: args.stop.stop_at,
        gdb: &args.debug,
        gdb_recording,
    };
    session.run(machine, inputs, services, |machine| {
        save_disks(machine, &args)
    })
}

/// `rewind restore`: resumes the machine of a snapshot.
pub fn restore(args: crate::RestoreArgs) -> Result<ExitCode, CliError> {
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)] // wall time for the report only
    let started = std::time::Instant::now();
    let overlay_dir = rewind_session::overlay_dir::overlay_dir(args.overlay_dir.as_deref())?;
    let chain = rewind_session::snapshot::open_chain(&args.snapshot)?;
    let restored = rewind_session::snapshot::restore(
        &chain,
        &rewind_session::packed::Unpacked::default(),
        &overlay_dir,
    )?;
    // Unmapping tens of MiB of file contents takes milliseconds; the
    // machine need not wait for it.
    std::thread::spawn(move || drop(chain));
    let config = restored.config;
    let mut machine = restored.machine;
    args.engine.apply(&mut machine)?;
    if let Some(at) = args.stop.stop_at.filter(|&at| at < machine.position()) {
        return Err(CliError::Message(format!(
            "--stop-at {at} is before the snapshot, which was taken at position {}",
            machine.position()
        )));
    }
    // Network devices come back on new backends of the same kind: what
    // the old host's connections were is not part of the machine.
    let mut nets = Vec::new();
    for net in &config.nets {
        // `backend` is "user" or "tap=NAME", both --net forms.
        let spec = NetSpec::parse(&net.backend).map_err(|e| {
            CliError::Message(format!("the snapshot's network device is unusable: {e}"))
        })?;
        nets.push(open_net(&spec, net.mac, config.seed)?);
    }
    let entropy = match config.entropy {
        Some(rewind_replay::EntropyRef::Host) => open_entropy(Some(Entropy::Host))?,
        _ => None,
    };
    let hvc = match (&args.hvc, config.hvc) {
        (Some(backend), true) => Some(backend.clone()),
        (None, true) => Some(crate::console::Backend::Null),
        (Some(_), false) => {
            return Err(CliError::Message(
                "--hvc: the snapshot's machine has no hvc0".to_string(),
            ))
        }
        (None, false) => None,
    };
    let (recorder, gdb_recording) = match &args.debug.gdb {
        Some(_) => {
            let (options, file) = gdb_recording(args.overlay_dir.as_deref())?;
            let recorder = crate::record::create_recorder(&options, config.clone(), &mut machine)?;
            (Some(recorder), Some(file))
        }
        None => (None, None),
    };
    let services = services(&args.snapshots, Some(config), &machine)?;
    let inputs = LiveInputs::new(nets, entropy, recorder);
    let session = Session {
        serial: &args.serial,
        hvc: hvc.as_ref(),
        report: args.report.as_deref(),
        started,
        stop_at: args.stop.stop_at,
        gdb: &args.debug,
        gdb_recording,
    };
    session.run(machine, inputs, services, |_| None)
}

fn open_entropy(entropy: Option<Entropy>) -> Result<Option<File>, CliError> {
    match entropy {
        Some(Entropy::Host) => Ok(Some(File::open("/dev/urandom").map_err(|e| {
            CliError::Message(format!("cannot open /dev/urandom for --entropy host: {e}"))
        })?)),
        _ => Ok(None),
    }
}

/// The snapshot and control services the options ask for.
fn services(
    args: &crate::SnapshotArgs,
    config: Option<rewind_replay::RecordedConfig>,
    machine: &Machine,
) -> Result<Services, CliError> {
    if let Some(config) = &config {
        if args.wanted() && config.disks.iter().any(|d| d.persist) {
            return Err(CliError::Message(
                "snapshots cannot be taken of a machine with a persist disk (its writes go into the image, which a snapshot does not hold); open the disk with an overlay".to_string(),
            ));
        }
    }
    let control = match &args.control {
        Some(path) => Some(Control::listen(path).map_err(CliError::Message)?),
        None => None,
    };
    if let Some(dir) = &args.snapshot_dir {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::Message(format!(
                "cannot create the snapshot directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    let options = SnapshotOptions {
        at: args.snapshot_at.zip(args.snapshot_out.clone()),
        every: args.snapshot_every.zip(args.snapshot_dir.clone()),
        dir: args.snapshot_dir.clone(),
    };
    let snapshots = config.map(|config| Snapshotter::new(config, options, machine));
    Ok(Services::new(snapshots, control))
}

/// Where a live run under gdb is recorded when the user asked for no
/// recording: a file of its own beside the disk overlays, removed at exit.
fn gdb_recording(
    overlay_dir: Option<&std::path::Path>,
) -> Result<(RecordOptions, tempfile::TempPath), CliError> {
    let dir = rewind_session::overlay_dir::overlay_dir(overlay_dir)?;
    let file = tempfile::Builder::new()
        .prefix("rewind-gdb-")
        .suffix(".rwd")
        .tempfile_in(&dir)
        .map_err(|e| {
            CliError::Message(format!(
                "cannot create the debugger's recording in {}: {e}",
                dir.display()
            ))
        })?
        .into_temp_path();
    let options = RecordOptions {
        output: file.to_path_buf(),
        checkpoint_every: rewind_session::verify::DEFAULT_EVERY,
        pack: false,
    };
    Ok((options, file))
}

/// A machine ready to run with its consoles, and how to report the end.
struct Session<'a> {
    serial: &'a crate::console::Backend,
    hvc: Option<&'a crate::console::Backend>,
    report: Option<&'a std::path::Path>,
    #[allow(clippy::disallowed_types)] // wall time for the report only
    started: std::time::Instant,
    /// `--stop-at`.
    stop_at: Option<u64>,
    /// `--gdb` and its options.
    gdb: &'a crate::gdb::GdbArgs,
    /// The recording a run under gdb made for itself (not the user's).
    gdb_recording: Option<tempfile::TempPath>,
}

impl Session<'_> {
    /// Runs the machine to its end and reports; `save` stores what must
    /// outlive the run (disk overlays) and returns a failure sentence.
    fn run(
        self,
        mut machine: Machine,
        mut inputs: LiveInputs,
        mut services: Services,
        save: impl FnOnce(&mut Machine) -> Option<String>,
    ) -> Result<ExitCode, CliError> {
        let ending = {
            let mut consoles = Consoles::new(self.serial, self.hvc).map_err(CliError::Message)?;
            if self.gdb.gdb.is_some() {
                // The debugger takes the consoles and services, and drops
                // them (the terminal's raw mode too) when the run ends.
                let debugged = crate::gdb::debug_live(
                    machine,
                    inputs,
                    consoles,
                    services,
                    self.gdb,
                    self.stop_at,
                )?;
                (machine, inputs) = (debugged.machine, debugged.inputs);
                debugged.ending
            } else {
                let ending = drive(
                    &mut machine,
                    &mut consoles,
                    &mut inputs,
                    &mut services,
                    self.stop_at,
                    None,
                );
                drop(services);
                ending
            }
            // The consoles (and the terminal's raw mode) are dropped here,
            // before anything else is printed; so are the services.
        };
        let recording = inputs.recorder.take().map(Recorder::close);
        let overlay_error = save(&mut machine);
        let (reason, code) = ending.reason_and_code();
        // Hashing all of RAM takes a while for a large guest: only when the
        // report or the recording's summary shows it, and at most once.
        let mut hash = match &recording {
            Some(Ok((_, end_hash))) => *end_hash,
            _ => None,
        };
        let mut state_hash = |machine: &Machine| *hash.get_or_insert_with(|| machine.state_hash());
        if let Some(path) = self.report {
            let report = Report {
                exit_reason: reason,
                exit_code: code,
                position: machine.position(),
                instructions_retired: machine.instret(),
                guest_time_ns: machine.guest_time_ns(),
                wall_seconds: self.started.elapsed().as_secs_f64(),
                state_hash: hex(&state_hash(&machine)),
                seed: machine.config.seed,
                engine: machine.engine().name(),
                translated_instructions: machine.translated_instructions(),
                replay: None,
            };
            report.write(path).map_err(CliError::Message)?;
        }
        if let Some(message) = ending.message() {
            eprintln!("\nrewind: {message}");
        } else if ending == Ending::StopAt {
            eprintln!(
                "\nrewind: stopped at position {}, as --stop-at asked",
                machine.position()
            );
        }
        let recording_error = match recording {
            // The debugger's own recording is no concern of the user's.
            Some(Ok(_)) if self.gdb_recording.is_some() => None,
            Some(Ok((summary, _))) => {
                eprintln!(
                    "rewind: {summary}; state hash {}",
                    hex(&state_hash(&machine))
                );
                None
            }
            Some(Err(error)) => Some(error),
            None => None,
        };
        let mut failed = false;
        for message in [recording_error, overlay_error].into_iter().flatten() {
            eprintln!("rewind: {message}");
            failed = true;
        }
        if failed && code == 0 {
            return Ok(ExitCode::from(1));
        }
        Ok(ExitCode::from(code))
    }
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
        if let Some(disk) = image_disk(machine, *n) {
            if let Err(e) = disk.save_overlay(file) {
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    first_error
}
