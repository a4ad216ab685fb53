//! Errors of this crate: each one plain sentence that says what went wrong and
//! what to do about it.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while fetching or preparing a guest.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// A Debian tool we run is not installed.
    #[error(
        "`{tool}` was not found on PATH; the default guest is fetched with Debian's apt tools, \
         so run on a Debian or Ubuntu host with apt installed, or give the kernel, initrd and \
         firmware explicitly"
    )]
    ToolMissing {
        /// The program that was looked for.
        tool: &'static str,
    },

    /// The host's apt sources name no Debian archive to take the URI from.
    #[error(
        "no Debian archive was found in the host's apt sources ({searched}); set \
         REWIND_DEBIAN_MIRROR to the URI of a Debian archive (as in a sources.list line)"
    )]
    NoDebianArchive {
        /// The files that were read.
        searched: String,
    },

    /// The keyring that authenticates the Debian archive is not installed.
    #[error(
        "the Debian archive keyring {} is missing; install the debian-archive-keyring package",
        path.display()
    )]
    KeyringMissing {
        /// Where the keyring was expected.
        path: PathBuf,
    },

    /// The keyring exists but lacks the keys that sign the suite.
    #[error(
        "apt could not check the signature of Debian {suite} from {uri} because {} lacks its \
         keys ({detail}); upgrade the debian-archive-keyring package (on bookworm, version \
         2023.3+deb12u2 or later carries the trixie keys)",
        keyring.display()
    )]
    ArchiveKeyMissing {
        /// The suite whose Release file was being verified.
        suite: String,
        /// The archive URI.
        uri: String,
        /// The keyring apt was told to trust.
        keyring: PathBuf,
        /// apt's own words.
        detail: String,
    },

    /// apt found a signature but rejected it (bad, expired, or unsigned).
    #[error("apt rejected the signature of Debian {suite} from {uri}: {detail}")]
    SignatureRejected {
        /// The suite whose Release file was being verified.
        suite: String,
        /// The archive URI.
        uri: String,
        /// apt's own words.
        detail: String,
    },

    /// The archive could not be reached (no network, DNS failure, refused, proxy).
    #[error(
        "the Debian archive at {uri} could not be reached ({detail}); check the network \
         connection and proxy settings"
    )]
    MirrorUnreachable {
        /// The archive URI.
        uri: String,
        /// apt's own words.
        detail: String,
    },

    /// A package we need is not in the suite.
    #[error("package {package} was not found in Debian {suite} for riscv64 at {uri}")]
    PackageNotFound {
        /// The package name.
        package: String,
        /// The suite.
        suite: String,
        /// The archive URI.
        uri: String,
    },

    /// An apt command failed for a reason not covered above.
    #[error("`{command}` failed ({status}): {detail}")]
    AptFailed {
        /// The command, shortened to the program and its verb.
        command: String,
        /// Its exit status.
        status: String,
        /// The error lines it printed.
        detail: String,
    },

    /// A downloaded package could not be read.
    #[error("{} is not a valid Debian package: {detail}", path.display())]
    BadDeb {
        /// The .deb file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    /// A package does not contain a file we need from it.
    #[error("package {package} does not contain {what}")]
    MissingInPackage {
        /// The package name.
        package: String,
        /// The file that was looked for.
        what: String,
    },

    /// The kernel is in a format the VMM cannot boot and we cannot convert.
    #[error("the kernel image is not usable: {detail}")]
    BadKernel {
        /// What is wrong with it.
        detail: String,
    },

    /// The file system holding the cache is full.
    #[error(
        "no space is left on the device holding {}; the default guest needs about 200 MB \
         while it is fetched and 55 MB afterwards",
        path.display()
    )]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },

    /// A file in the cache is not what the cache manifest says.
    #[error(
        "the guest cache at {} is damaged ({detail}); delete that directory to fetch the guest again",
        path.display()
    )]
    CorruptCache {
        /// The cache directory.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },

    /// Any other I/O failure.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "write", "create directory", "run", ...).
        action: &'static str,
        /// The file or program concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl GuestError {
    /// Wraps an I/O error, turning "no space left" into [`GuestError::DiskFull`].
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::StorageFull
            || source.kind() == io::ErrorKind::QuotaExceeded
        {
            GuestError::DiskFull {
                path: path.to_path_buf(),
            }
        } else {
            GuestError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        }
    }
}
