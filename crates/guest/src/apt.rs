//! Running apt with private state, so that fetching the guest's packages
//! leaves the host's apt untouched and works without root.
//!
//! Everything apt reads or writes lives under one directory: its own
//! `apt.conf` (given through `APT_CONFIG`, which apt reads before anything
//! else), sources list, package lists, package cache and an empty dpkg status
//! file. The host's `/etc/apt/apt.conf.d` is deliberately not read: on many
//! hosts it holds hooks such as `APT::Update::Post-Invoke { "rm -f
//! /var/cache/apt/archives/*.deb" }` that would act on the host's state, and
//! settings that would change what we fetch. The one thing taken over from the
//! host configuration is its proxy settings (`Acquire::http::Proxy` and
//! friends, read with `apt-config dump`); apt also honours `http_proxy` in the
//! environment by itself.
//!
//! Trust: the sources entry names the host's Debian archive keyring with
//! `signed-by=`, no other keyring is consulted (the host's trusted.gpg.d is
//! replaced by an empty directory), and unauthenticated or insecure
//! repositories are refused explicitly. apt checks the InRelease signature,
//! then the hash of every index and .deb against it.
//!
//! To reproduce by hand what this module does:
//! `APT_CONFIG=<dir>/apt.conf apt-get update`, then `apt-cache show ...`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::sources::{deb822_paragraphs, field};
use crate::GuestError;

/// The guest architecture, for apt.
pub(crate) const ARCH: &str = "riscv64";

/// A package as described by the (signed) package index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackageInfo {
    pub name: String,
    pub version: String,
    /// Size of the .deb in bytes.
    pub size: u64,
    pub sha256: String,
    pub depends: String,
}

/// An apt configured to use only the state under `root`.
pub(crate) struct PrivateApt {
    root: PathBuf,
    uri: String,
    suite: String,
    keyring: PathBuf,
}

impl PrivateApt {
    /// Lays out the private configuration under `root` (which may already hold
    /// package lists from an interrupted run; apt reuses what is valid).
    pub fn create(root: &Path, uri: &str, suite: &str, keyring: &Path) -> Result<Self, GuestError> {
        let apt = PrivateApt {
            root: root.to_path_buf(),
            uri: uri.into(),
            suite: suite.into(),
            keyring: keyring.into(),
        };
        for dir in [
            "empty",
            "state/lists/partial",
            "cache/archives/partial",
            "log",
        ] {
            let d = root.join(dir);
            fs::create_dir_all(&d).map_err(|e| GuestError::io("create directory", &d, e))?;
        }
        let write = |name: &str, text: &str| {
            let p = root.join(name);
            fs::write(&p, text).map_err(|e| GuestError::io("write", &p, e))
        };
        write("state/status", "")?;
        write("sources.list", &sources_list(uri, suite, keyring))?;
        write("apt.conf", &apt_conf(root, &host_proxy_settings()))?;
        Ok(apt)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("APT_CONFIG", self.root.join("apt.conf"))
            .env("LC_ALL", "C")
            .env_remove("LANGUAGE")
            .stdin(Stdio::null())
            .arg("-q");
        cmd
    }

    fn run(&self, mut cmd: Command, what: &str) -> Result<Output, GuestError> {
        cmd.output()
            .map_err(|e| GuestError::io("run", Path::new(what), e))
    }

    /// `apt-get update` for the one source; fails unless the riscv64 package
    /// index arrived and verified.
    pub fn update(&self) -> Result<(), GuestError> {
        let mut cmd = self.command("apt-get");
        cmd.arg("update");
        let out = self.run(cmd, "apt-get")?;
        let text = combined(&out);
        let lists = self.root.join("state/lists");
        let have_index = fs::read_dir(&lists)
            .map_err(|e| GuestError::io("read directory", &lists, e))?
            .filter_map(Result::ok)
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(&format!("binary-{ARCH}_Packages"))
            });
        // apt-get update exits 0 when it cannot connect at all (it "ignores"
        // the failed index), so success means: the index is here and apt
        // reported no error.
        if out.status.success()
            && have_index
            && !text
                .lines()
                .any(|l| l.starts_with("Err:") || l.starts_with("E:"))
        {
            return Ok(());
        }
        Err(self.classify("apt-get update", &out, &text))
    }

    /// `apt-cache show` for the candidate version of `package`.
    pub fn show(&self, package: &str) -> Result<PackageInfo, GuestError> {
        let mut cmd = self.command("apt-cache");
        cmd.args(["show", "--no-all-versions", package]);
        let out = self.run(cmd, "apt-cache")?;
        let text = combined(&out);
        if !out.status.success() {
            if text.contains("No packages found")
                || text.contains("Unable to locate package")
                || text.contains("purely virtual")
            {
                return Err(self.not_found(package));
            }
            return Err(self.classify(&format!("apt-cache show {package}"), &out, &text));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let paragraphs = deb822_paragraphs(&stdout);
        let p = paragraphs
            .iter()
            .find(|p| field(p, "Package") == Some(package))
            .ok_or_else(|| self.not_found(package))?;
        let get = |key: &str| field(p, key).unwrap_or("").to_string();
        Ok(PackageInfo {
            name: get("Package"),
            version: get("Version"),
            size: get("Size").parse().unwrap_or(0),
            sha256: get("SHA256"),
            depends: get("Depends"),
        })
    }

    /// `apt-get download name=version ...` into `dest`.
    pub fn download(&self, packages: &[PackageInfo], dest: &Path) -> Result<(), GuestError> {
        let mut cmd = self.command("apt-get");
        cmd.arg("download").current_dir(dest);
        for p in packages {
            cmd.arg(format!("{}={}", p.name, p.version));
        }
        let out = self.run(cmd, "apt-get")?;
        if out.status.success() {
            return Ok(());
        }
        Err(self.classify("apt-get download", &out, &combined(&out)))
    }

    fn not_found(&self, package: &str) -> GuestError {
        GuestError::PackageNotFound {
            package: package.into(),
            suite: self.suite.clone(),
            uri: self.uri.clone(),
        }
    }

    /// Turns apt's output into the most specific error we can name.
    fn classify(&self, command: &str, out: &Output, text: &str) -> GuestError {
        let detail = error_lines(text);
        let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
        if has(&["NO_PUBKEY", "public key is not available"]) {
            return GuestError::ArchiveKeyMissing {
                suite: self.suite.clone(),
                uri: self.uri.clone(),
                keyring: self.keyring.clone(),
                detail,
            };
        }
        if has(&[
            "Could not resolve",
            "Temporary failure resolving",
            "Could not connect",
            "Connection failed",
            "Connection timed out",
            "Network is unreachable",
            "No route to host",
            "Unable to connect",
        ]) {
            return GuestError::MirrorUnreachable {
                uri: self.uri.clone(),
                detail,
            };
        }
        // An HTTP error on the Release file also makes apt say "is not signed":
        // the real problem is then the fetch, reported as it is.
        let fetch_failed = text.lines().any(|l| l.contains("Failed to fetch"));
        let signature = [
            "EXPKEYSIG",
            "BADSIG",
            "REVKEYSIG",
            "is not signed",
            "GPG error",
            "NODATA",
            "signature",
        ];
        if !fetch_failed && has(&signature) {
            return GuestError::SignatureRejected {
                suite: self.suite.clone(),
                uri: self.uri.clone(),
                detail,
            };
        }
        let status = match out.status.code() {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".to_string(),
        };
        GuestError::AptFailed {
            command: command.into(),
            status,
            detail,
        }
    }
}

/// The one-line sources entry: the host's archive, the guest's suite.
fn sources_list(uri: &str, suite: &str, keyring: &Path) -> String {
    format!(
        "deb [arch={ARCH} signed-by={}] {uri} {suite} main\n",
        keyring.display()
    )
}

/// The private apt.conf. `Dir::Etc::Main` and `Dir::Etc::Parts` point at
/// nothing so that the host's apt.conf and apt.conf.d are not read.
fn apt_conf(root: &Path, proxy: &str) -> String {
    let r = root.display();
    format!(
        r#"// Private apt configuration of rewind-guest: nothing here touches the host's apt state.
Dir::Etc::Main "/dev/null";
Dir::Etc::Parts "{r}/empty";
Dir::Etc::SourceList "{r}/sources.list";
Dir::Etc::SourceParts "{r}/empty";
Dir::Etc::Preferences "{r}/preferences";
Dir::Etc::PreferencesParts "{r}/empty";
Dir::Etc::Trusted "{r}/trusted.gpg";
Dir::Etc::TrustedParts "{r}/empty";
Dir::State "{r}/state";
Dir::State::status "{r}/state/status";
Dir::Cache "{r}/cache";
Dir::Log "{r}/log";
APT::Architecture "{ARCH}";
APT::Architectures {{ "{ARCH}"; }};
Acquire::Languages {{ "none"; }};
Acquire::AllowInsecureRepositories "false";
Acquire::AllowDowngradeToInsecureRepositories "false";
APT::Get::AllowUnauthenticated "false";
// apt drops to the _apt user for downloads only when run as root, and then
// only if _apt can write the target directory; under root's home it cannot,
// and apt would fall back to root with a warning. Say so up front.
APT::Sandbox::User "root";
{proxy}"#
    )
}

/// The host's proxy settings for apt, as apt.conf lines (empty if none).
fn host_proxy_settings() -> String {
    let Ok(out) = Command::new("apt-config")
        .args(["dump", "Acquire"])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return String::new();
    };
    proxy_lines(&String::from_utf8_lossy(&out.stdout))
}

/// Keeps the lines of an `apt-config dump` that configure proxies.
fn proxy_lines(dump: &str) -> String {
    let mut out = String::new();
    for line in dump.lines() {
        let key = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        // Covers Proxy, Proxy::<host>, Proxy-Auto-Detect and ProxyAutoDetect.
        let is_proxy = ["http", "https", "ftp"]
            .iter()
            .any(|scheme| key.starts_with(&format!("acquire::{scheme}::proxy")));
        if is_proxy && line.trim_end().ends_with(';') {
            out.push_str(line.trim());
            out.push('\n');
        }
    }
    out
}

fn combined(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// The lines of apt output that say what failed, joined into one line:
/// `Err:` items with their reasons and `E:` lines, else the `W:` lines.
fn error_lines(text: &str) -> String {
    let mut errors: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("Err:") {
            // The reason is on the indented line that follows.
            match lines.next_if(|l| l.starts_with(' ')) {
                Some(reason) => errors.push(format!("{}: {}", line.trim(), reason.trim())),
                None => errors.push(line.trim().to_string()),
            }
        } else if line.starts_with("E:") {
            errors.push(line.trim().to_string());
        } else if line.starts_with("W:") && !line.contains("Some index files failed to download") {
            warnings.push(line.trim().to_string());
        }
    }
    let picked = if errors.is_empty() { warnings } else { errors };
    let mut s = if picked.is_empty() {
        text.trim().replace('\n', "; ")
    } else {
        picked.join("; ")
    };
    if s.len() > 600 {
        let mut cut = 600;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str(" ...");
    }
    s
}

/// The real kernel package a `linux-image-<flavour>` metapackage depends on.
pub(crate) fn kernel_package_from_depends(meta: &str, depends: &str) -> Option<String> {
    depends
        .split([',', '|'])
        .map(|d| d.split_whitespace().next().unwrap_or(""))
        .find(|name| name.starts_with("linux-image-") && *name != meta)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metapackage_resolves_to_the_versioned_kernel_package() {
        // Depends of trixie's linux-image-riscv64 6.12.107-1.
        let depends = "linux-image-6.12.107+deb13-riscv64 (= 6.12.107-1)";
        assert_eq!(
            kernel_package_from_depends("linux-image-riscv64", depends).as_deref(),
            Some("linux-image-6.12.107+deb13-riscv64")
        );
        let signed = "initramfs-tools | linux-initramfs-tool, linux-image-6.1.0-9-amd64-unsigned (= 6.1.27-1)";
        assert_eq!(
            kernel_package_from_depends("linux-image-amd64", signed).as_deref(),
            Some("linux-image-6.1.0-9-amd64-unsigned")
        );
        assert_eq!(
            kernel_package_from_depends("linux-image-riscv64", "foo"),
            None
        );
    }

    #[test]
    fn config_isolates_apt_from_the_host() {
        let conf = apt_conf(
            Path::new("/c/apt"),
            "Acquire::http::Proxy \"http://proxy:3128/\";\n",
        );
        assert!(conf.contains("Dir::Etc::Main \"/dev/null\";"));
        assert!(conf.contains("Dir::Etc::Parts \"/c/apt/empty\";"));
        assert!(conf.contains("Dir::State::status \"/c/apt/state/status\";"));
        assert!(conf.contains("Dir::Etc::TrustedParts \"/c/apt/empty\";"));
        assert!(conf.contains("APT::Architectures { \"riscv64\"; };"));
        assert!(conf.ends_with("Acquire::http::Proxy \"http://proxy:3128/\";\n"));
        assert_eq!(
            sources_list("mirror+file:///etc/apt/mirrors/debian.list", "trixie", Path::new("/k.gpg")),
            "deb [arch=riscv64 signed-by=/k.gpg] mirror+file:///etc/apt/mirrors/debian.list trixie main\n"
        );
    }

    #[test]
    fn only_proxy_settings_are_taken_from_the_host() {
        let dump = "Acquire \"\";\nAcquire::http \"\";\nAcquire::http::Proxy \"http://proxy:3128/\";\n\
                    Acquire::http::Proxy::deb.example \"DIRECT\";\nAcquire::Check-Valid-Until \"false\";\n\
                    Acquire::https::Proxy-Auto-Detect \"/usr/bin/detect\";\nAcquire::Languages \"none\";\n";
        assert_eq!(
            proxy_lines(dump),
            "Acquire::http::Proxy \"http://proxy:3128/\";\nAcquire::http::Proxy::deb.example \"DIRECT\";\n\
             Acquire::https::Proxy-Auto-Detect \"/usr/bin/detect\";\n"
        );
    }

    /// Classifies output captured from apt 2.6 (bookworm) in each failure.
    fn classify(stdout: &str, stderr: &str, code: i32) -> GuestError {
        use std::os::unix::process::ExitStatusExt;
        let apt = PrivateApt {
            root: "/c".into(),
            uri: "http://archive.example/debian".into(),
            suite: "trixie".into(),
            keyring: "/usr/share/keyrings/debian-archive-keyring.gpg".into(),
        };
        let out = Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        };
        apt.classify("apt-get update", &out, &combined(&out))
    }

    #[test]
    fn apt_failures_become_specific_errors() {
        let e = classify(
            "Err:1 http://127.0.0.1:9/debian trixie InRelease\n  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\nReading package lists...\n",
            "W: Failed to fetch http://127.0.0.1:9/debian/dists/trixie/InRelease  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\nW: Some index files failed to download. They have been ignored, or old ones used instead.\n",
            0,
        );
        assert!(matches!(e, GuestError::MirrorUnreachable { .. }), "{e}");
        let e = classify(
            "Err:1 http://nonexistent.invalid/debian trixie InRelease\n  Could not resolve 'nonexistent.invalid'\n",
            "",
            0,
        );
        assert!(matches!(e, GuestError::MirrorUnreachable { .. }), "{e}");
        let e = classify(
            "Get:1 http://deb.debian.org/debian trixie InRelease [140 kB]\nErr:1 http://deb.debian.org/debian trixie InRelease\n  The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 6ED0E7B82643E131\n",
            "E: The repository 'http://deb.debian.org/debian trixie InRelease' is not signed.\n",
            100,
        );
        assert!(matches!(e, GuestError::ArchiveKeyMissing { .. }), "{e}");
        assert!(e.to_string().contains("2023.3+deb12u2"), "{e}");
        let e = classify(
            "Err:1 http://deb.debian.org/nonexistent trixie InRelease\n  404  Not Found [IP: 203.0.113.80 80]\n",
            "E: Failed to fetch http://deb.debian.org/nonexistent/dists/trixie/InRelease  404  Not Found\n\
             E: The repository 'http://deb.debian.org/nonexistent trixie Release' is not signed.\n",
            100,
        );
        assert!(matches!(e, GuestError::AptFailed { .. }), "{e}");
        assert!(
            e.to_string().contains("exit status 100") && e.to_string().contains("404  Not Found"),
            "{e}"
        );
    }

    #[test]
    fn apt_errors_are_summarised_on_one_line() {
        let text = "Err:1 http://nonexistent.invalid/debian trixie InRelease\n  Could not resolve 'nonexistent.invalid'\n\
                    Reading package lists...\nW: Failed to fetch http://x/InRelease  Could not resolve 'x'\n";
        assert_eq!(
            error_lines(text),
            "Err:1 http://nonexistent.invalid/debian trixie InRelease: Could not resolve 'nonexistent.invalid'"
        );
        let only_warnings = "W: Failed to fetch http://x/InRelease  Could not resolve 'x'\n\
                             W: Some index files failed to download. They have been ignored, or old ones used instead.\n";
        assert_eq!(
            error_lines(only_warnings),
            "W: Failed to fetch http://x/InRelease  Could not resolve 'x'"
        );
    }
}
