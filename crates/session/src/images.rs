//! The files a machine boots from: firmware, kernel and initrd, chosen from
//! the options (or the default guest) for `run` and `record`, or named by a
//! recording for `replay`. Each is read once and hashed, so a recording can
//! name exactly what it ran and replay can refuse anything else.

use crate::packed::Unpacked;
use crate::SessionError;
use rewind_machine::loader::parse_kernel;
use rewind_machine::{Firmware, KernelImage};
use rewind_replay::{FirmwareRef, ImageRef, RecordedConfig};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// Where Debian's opensbi package puts the generic fw_dynamic firmware.
const HOST_OPENSBI: &str = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin";

/// The default kernel command line with a kernel of the user's. `earlycon`
/// makes the kernel print from its first instructions, so a kernel that dies
/// before its console driver starts (e.g. with too little memory) still shows
/// why, and its panic is noticed.
const DEFAULT_APPEND: &str = "console=ttyS0 earlycon";

/// A file read into memory, with its description for a recording. The
/// bytes are shared with the machine, which keeps them for resets.
pub struct Image {
    pub reference: ImageRef,
    pub bytes: Arc<[u8]>,
}

impl Image {
    pub fn read(what: &str, path: &Path) -> Result<Image, SessionError> {
        let bytes = read_shared(path).map_err(|e| {
            SessionError::Message(format!("cannot read {what} {}: {e}", path.display()))
        })?;
        Ok(Image {
            reference: ImageRef {
                path: path.display().to_string(),
                size: bytes.len() as u64,
                blake3: *blake3::hash(&bytes).as_bytes(),
            },
            bytes,
        })
    }
}

/// Reads a whole file straight into shared memory: reading into a vector
/// and converting would copy every byte once more (tens of MiB for a kernel
/// and initrd, a noticeable part of start-up).
///
/// Unlike a snapshot file (rewind_snapshot::read_file), the buffer gets no
/// huge pages: on the 2-core KVM hosts Rewind is benchmarked on, 44 MB took
/// 17-22 ms with 4 KiB faults every time, but with MADV_HUGEPAGE 5 ms when
/// free 2 MiB pages were at hand and 40-330 ms when not (a boot after
/// another large process, as in every side-by-side bench: 11% of a boot's
/// CPU time in two profiles out of three went to zeroing those pages).
fn read_shared(path: &Path) -> std::io::Result<Arc<[u8]>> {
    let mut file = std::fs::File::open(path)?;
    let len = usize::try_from(file.metadata()?.len())
        .map_err(|_| std::io::Error::other("it is too large for this host"))?;
    let zeroed = Arc::<[u8]>::new_zeroed_slice(len);
    // SAFETY: the memory is zeroed, and all-zero bytes are valid u8s.
    let mut bytes = unsafe { zeroed.assume_init() };
    file.read_exact(Arc::get_mut(&mut bytes).expect("just made, so not shared"))?;
    if file.read(&mut [0])? != 0 {
        return Err(std::io::Error::other("it grew while it was being read"));
    }
    Ok(bytes)
}

/// The firmware, kernel and initrd of a machine, and its command line.
pub struct BootFiles {
    pub firmware: Option<Image>,
    /// Set when `firmware` is None: the built-in SBI or no firmware at all.
    pub firmware_builtin: bool,
    pub kernel: Image,
    pub initrd: Option<Image>,
    pub bootargs: String,
    /// Kernel, initrd and firmware came from the default guest.
    pub default_guest: bool,
}

impl BootFiles {
    /// What a recording says of the firmware.
    pub fn firmware_ref(&self) -> FirmwareRef {
        match (&self.firmware, self.firmware_builtin) {
            (Some(image), _) => FirmwareRef::Binary(image.reference.clone()),
            (None, true) => FirmwareRef::Builtin,
            (None, false) => FirmwareRef::None,
        }
    }

    /// The machine's firmware and parsed kernel.
    pub fn for_machine(&self) -> Result<(Firmware, KernelImage), SessionError> {
        let firmware = match &self.firmware {
            Some(image) => Firmware::Binary {
                name: image.reference.path.clone(),
                bytes: image.bytes.clone(),
            },
            None if self.firmware_builtin => Firmware::Builtin,
            None => Firmware::None,
        };
        let kernel = parse_kernel(&self.kernel.reference.path, &self.kernel.bytes)?;
        Ok((firmware, kernel))
    }
}

/// Chooses the files from the options of `run`, fetching the default guest
/// when no kernel is given.
pub fn from_options(
    firmware: Option<&str>,
    kernel: Option<&Path>,
    initrd: Option<&Path>,
    append: Option<&str>,
) -> Result<BootFiles, SessionError> {
    let (kernel_path, initrd_path, default_firmware, default_append, default_guest) = match kernel {
        Some(kernel) => (
            kernel.to_path_buf(),
            initrd.map(Path::to_path_buf),
            None,
            DEFAULT_APPEND,
            false,
        ),
        None => {
            let guest = fetch_default_guest()?;
            (
                guest.kernel,
                Some(initrd.map_or(guest.initrd, Path::to_path_buf)),
                Some(guest.firmware),
                rewind_guest::DEFAULT_CMDLINE,
                initrd.is_none(),
            )
        }
    };
    let (firmware, firmware_builtin) = firmware_from(firmware, default_firmware.as_deref())?;
    Ok(BootFiles {
        firmware,
        firmware_builtin,
        kernel: Image::read("kernel", &kernel_path)?,
        initrd: initrd_path.map(|p| Image::read("initrd", &p)).transpose()?,
        bootargs: append.unwrap_or(default_append).to_string(),
        default_guest,
    })
}

fn fetch_default_guest() -> Result<rewind_guest::GuestFiles, SessionError> {
    let cache = rewind_guest::default_cache_dir();
    let mut progress = |line: &str| eprintln!("rewind: {line}");
    Ok(rewind_guest::default_guest(&cache, &mut progress)?)
}

/// The firmware image for `--firmware` (None: built-in or none, as the
/// flag says).
fn firmware_from(
    choice: Option<&str>,
    default: Option<&Path>,
) -> Result<(Option<Image>, bool), SessionError> {
    let binary = |path: &Path| Ok((Some(Image::read("firmware", path)?), false));
    let host = Path::new(HOST_OPENSBI);
    match choice {
        Some("none") => Ok((None, false)),
        Some("builtin") => Ok((None, true)),
        Some("opensbi") => match default {
            Some(path) => binary(path),
            None if host.exists() => binary(host),
            None => Err(SessionError::Message(format!(
                "OpenSBI is not installed ({HOST_OPENSBI} is missing); install Debian's opensbi package or use --firmware builtin"
            ))),
        },
        Some(path) => binary(Path::new(path)),
        None => match default {
            Some(path) => binary(path),
            None if host.exists() => binary(host),
            None => Ok((None, true)),
        },
    }
}

/// What names the files a machine is rebuilt from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Recording,
    Snapshot,
}

impl Origin {
    pub fn noun(self) -> &'static str {
        match self {
            Origin::Recording => "recording",
            Origin::Snapshot => "snapshot",
        }
    }
}

/// Reads the file a recording or snapshot names (from inside it, if it is
/// packed there), refusing it if its hash differs.
pub fn checked_image(
    what: &str,
    recorded: &ImageRef,
    origin: Origin,
    unpacked: &Unpacked,
) -> Result<Image, SessionError> {
    if let Some(bytes) = unpacked.file(&recorded.blake3) {
        // Unpacking checked its hash.
        return Ok(Image {
            reference: recorded.clone(),
            bytes,
        });
    }
    let noun = origin.noun();
    let image = Image::read(what, Path::new(&recorded.path))
        .map_err(|e| SessionError::Message(format!("{e}, which the {noun} was made with")))?;
    if image.reference.blake3 != recorded.blake3 {
        return Err(SessionError::Message(format!(
            "the {what} {} is not the one the {noun} was made with (its content hash differs)",
            recorded.path
        )));
    }
    Ok(image)
}

/// Reads the files a recording or snapshot names, checking each against its hash. A
/// recording of the default guest may have been made on a host whose cache
/// is elsewhere: a file missing or different at its recorded path is then
/// looked for in this host's cache (fetched if needed).
pub fn from_recording(
    config: &RecordedConfig,
    origin: Origin,
    unpacked: &Unpacked,
) -> Result<BootFiles, SessionError> {
    let (firmware, kernel, initrd) = (&config.firmware, &config.kernel, config.initrd.as_ref());
    let (bootargs, default_guest) = (&config.bootargs, config.default_guest);
    // Read and hashed side by side: reading tens of MiB into fresh memory
    // is a good part of restoring a snapshot, and the files are independent.
    let binary_firmware = match firmware {
        FirmwareRef::Binary(r) => Some(r),
        _ => None,
    };
    let (at_firmware, at_kernel, at_initrd) = std::thread::scope(|s| {
        let kernel = s.spawn(|| checked_image("kernel", kernel, origin, unpacked));
        let initrd = initrd.map(|r| s.spawn(move || checked_image("initrd", r, origin, unpacked)));
        let firmware = binary_firmware.map(|r| checked_image("firmware", r, origin, unpacked));
        let join = |h: std::thread::ScopedJoinHandle<'_, _>| {
            h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
        };
        (firmware, join(kernel), initrd.map(join))
    });
    let mut guest: Option<rewind_guest::GuestFiles> = None;
    let mut find = |what: &str,
                    recorded: &ImageRef,
                    at_path: Result<Image, SessionError>|
     -> Result<Image, SessionError> {
        if at_path.is_err() && default_guest {
            if guest.is_none() {
                guest = Some(fetch_default_guest()?);
            }
            let g = guest.as_ref().expect("fetched above");
            let cached = match what {
                "kernel" => &g.kernel,
                "initrd" => &g.initrd,
                _ => &g.firmware,
            };
            let image = Image::read(what, cached)?;
            if image.reference.blake3 == recorded.blake3 {
                return Ok(image);
            }
        }
        // The error names the recorded path, where the file was looked for
        // first.
        at_path
    };
    let (firmware, firmware_builtin) = match (firmware, at_firmware) {
        (FirmwareRef::Binary(r), Some(at_path)) => (Some(find("firmware", r, at_path)?), false),
        (FirmwareRef::Builtin, _) => (None, true),
        _ => (None, false),
    };
    let kernel = find("kernel", kernel, at_kernel)?;
    let initrd = match (initrd, at_initrd) {
        (Some(r), Some(at_path)) => Some(find("initrd", r, at_path)?),
        _ => None,
    };
    Ok(BootFiles {
        firmware,
        firmware_builtin,
        kernel,
        initrd,
        bootargs: bootargs.to_string(),
        default_guest,
    })
}
