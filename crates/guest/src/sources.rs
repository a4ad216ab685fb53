//! Reading the host's apt sources to learn which Debian archive it uses.
//!
//! We never write a mirror's host name into code: the archive URI is whatever
//! the host's apt already uses for Debian (`URIs:` in a deb822 `.sources` file,
//! or the URI of a one-line `deb` entry), passed to apt verbatim so that
//! schemes such as `mirror+file:` and local caching proxies keep working.
//! Only the suite changes (the host may run bookworm; the guest is trixie).

use std::fs;
use std::path::{Path, PathBuf};

use crate::GuestError;

/// One source entry, from either format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    /// `deb`, `deb-src`.
    pub types: Vec<String>,
    /// Archive URIs, in order.
    pub uris: Vec<String>,
    /// Suites (codenames like `bookworm`, or `bookworm-updates`, `stable`, ...).
    pub suites: Vec<String>,
    /// Components (`main`, `contrib`, ...).
    pub components: Vec<String>,
    /// False for a deb822 entry with `Enabled: no`.
    pub enabled: bool,
}

/// Suite names of the Debian archive proper: release codenames and aliases.
/// A source with one of these suites is a Debian archive (as opposed to a
/// security archive, `-updates`, `-backports`, or a third-party repository).
const DEBIAN_SUITES: &[&str] = &[
    "oldoldstable",
    "oldstable",
    "stable",
    "testing",
    "unstable",
    "sid",
    "jessie",
    "stretch",
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "duke",
];

/// Splits deb822 text into paragraphs of (field, value) pairs. Comment lines
/// (`#` in the first column) are dropped without ending the paragraph;
/// continuation lines (leading space or tab) extend the previous value.
pub(crate) fn deb822_paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut paragraphs = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, value)) = current.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

/// The value of `key` (case-insensitive) in a paragraph.
pub(crate) fn field<'a>(paragraph: &'a [(String, String)], key: &str) -> Option<&'a str> {
    paragraph
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

fn words(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Parses a deb822 `.sources` file.
pub fn parse_deb822_sources(text: &str) -> Vec<AptSource> {
    deb822_paragraphs(text)
        .iter()
        .map(|p| AptSource {
            types: words(field(p, "Types")),
            uris: words(field(p, "URIs")),
            suites: words(field(p, "Suites")),
            components: words(field(p, "Components")),
            enabled: !field(p, "Enabled").is_some_and(|v| v.eq_ignore_ascii_case("no")),
        })
        .collect()
}

/// Parses a one-line-style `sources.list`: `deb [options] uri suite [component...]`.
pub fn parse_one_line_sources(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        // apt cuts a line at the first `#`, wherever it is.
        let line = line.split('#').next().unwrap_or("");
        let mut tokens = line.split_whitespace().peekable();
        let Some(kind) = tokens.next() else { continue };
        if kind != "deb" && kind != "deb-src" {
            continue;
        }
        if tokens.peek().is_some_and(|t| t.starts_with('[')) {
            for t in tokens.by_ref() {
                if t.ends_with(']') {
                    break;
                }
            }
        }
        let (Some(uri), Some(suite)) = (tokens.next(), tokens.next()) else {
            continue;
        };
        out.push(AptSource {
            types: vec![kind.to_string()],
            uris: vec![uri.to_string()],
            suites: vec![suite.to_string()],
            components: tokens.map(str::to_string).collect(),
            enabled: true,
        });
    }
    out
}

/// The URI of the first enabled binary (`deb`) source whose suites include a
/// Debian release (codename or alias), or `None`.
pub fn debian_archive_uri(sources: &[AptSource]) -> Option<String> {
    sources
        .iter()
        .filter(|s| s.enabled && s.types.iter().any(|t| t == "deb"))
        .filter(|s| {
            s.suites
                .iter()
                .any(|suite| DEBIAN_SUITES.contains(&suite.as_str()))
        })
        .flat_map(|s| s.uris.iter())
        .find(|uri| !uri.starts_with("cdrom:"))
        .cloned()
}

/// Reads `<etc_apt>/sources.list` and `<etc_apt>/sources.list.d/*.{list,sources}`
/// in apt's order and returns the Debian archive URI found there.
pub fn host_debian_archive_uri(etc_apt: &Path) -> Result<String, GuestError> {
    let mut files: Vec<PathBuf> = vec![etc_apt.join("sources.list")];
    let parts = etc_apt.join("sources.list.d");
    if let Ok(dir) = fs::read_dir(&parts) {
        let mut names: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources"))
            .collect();
        names.sort();
        files.extend(names);
    }
    let mut sources = Vec::new();
    let mut searched = Vec::new();
    for path in &files {
        let Ok(text) = fs::read_to_string(path) else {
            continue;
        };
        searched.push(path.display().to_string());
        if path.extension().is_some_and(|x| x == "sources") {
            sources.extend(parse_deb822_sources(&text));
        } else {
            sources.extend(parse_one_line_sources(&text));
        }
    }
    debian_archive_uri(&sources).ok_or_else(|| GuestError::NoDebianArchive {
        searched: if searched.is_empty() {
            format!("nothing readable in {}", etc_apt.display())
        } else {
            searched.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's /etc/apt/sources.list.d/debian.sources on a bookworm image.
    const BOOKWORM_DEB822: &str = "\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    #[test]
    fn deb822_takes_the_archive_not_the_security_archive() {
        let sources = parse_deb822_sources(BOOKWORM_DEB822);
        assert_eq!(
            sources.len(),
            2,
            "a comment inside a paragraph does not split it"
        );
        assert_eq!(sources[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            debian_archive_uri(&sources).as_deref(),
            Some("http://deb.debian.org/debian")
        );
        // With the order reversed the security archive is still skipped.
        let reversed: Vec<AptSource> = sources.into_iter().rev().collect();
        assert_eq!(
            debian_archive_uri(&reversed).as_deref(),
            Some("http://deb.debian.org/debian")
        );
    }

    #[test]
    fn deb822_handles_case_continuations_disabled_entries_and_mirror_uris() {
        let text = "\
types: deb
uris: https://old.example/debian
suites: bookworm
enabled: no

Types: deb deb-src
URIs: mirror+file:///etc/apt/mirrors/debian.list
  https://second.example/debian
Suites: trixie
Components: main contrib
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 -----END PGP PUBLIC KEY BLOCK-----
";
        let sources = parse_deb822_sources(text);
        assert!(!sources[0].enabled);
        assert_eq!(
            sources[1].uris,
            [
                "mirror+file:///etc/apt/mirrors/debian.list",
                "https://second.example/debian"
            ]
        );
        assert_eq!(
            debian_archive_uri(&sources).as_deref(),
            Some("mirror+file:///etc/apt/mirrors/debian.list")
        );
    }

    #[test]
    fn one_line_format_with_options_and_comments() {
        let text = "\
# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb [ arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg ] http://security.example/debian-security bookworm-security main
deb [arch=amd64] http://ftp.example.org/debian/ bookworm main contrib # trailing comment
deb http://later.example/debian bookworm main
";
        let sources = parse_one_line_sources(text);
        assert_eq!(sources.len(), 4);
        assert_eq!(sources[2].uris, ["http://ftp.example.org/debian/"]);
        assert_eq!(sources[2].components, ["main", "contrib"]);
        assert_eq!(
            debian_archive_uri(&sources).as_deref(),
            Some("http://ftp.example.org/debian/")
        );
    }

    #[test]
    fn third_party_and_ubuntu_sources_are_not_debian() {
        let text = "\
deb [signed-by=/usr/share/keyrings/nodesource.gpg] https://deb.nodesource.example/node_20.x nodistro main
deb http://archive.ubuntu.example/ubuntu noble main
deb cdrom:[Debian GNU/Linux]/ bookworm main
";
        assert_eq!(debian_archive_uri(&parse_one_line_sources(text)), None);
    }

    #[test]
    fn reads_a_host_tree_in_apt_order() {
        let dir = std::env::temp_dir().join(format!("rewind-guest-sources-{}", std::process::id()));
        let d = dir.join("sources.list.d");
        fs::create_dir_all(&d).unwrap();
        fs::write(dir.join("sources.list"), "# moved to sources.list.d\n").unwrap();
        fs::write(d.join("debian.sources"), BOOKWORM_DEB822).unwrap();
        fs::write(
            d.join("aaa.list"),
            "deb https://third.example/repo nodistro main\n",
        )
        .unwrap();
        fs::write(
            d.join("zz.list.disabled"),
            "deb http://disabled.example/debian bookworm main\n",
        )
        .unwrap();
        assert_eq!(
            host_debian_archive_uri(&dir).unwrap(),
            "http://deb.debian.org/debian"
        );
        fs::remove_file(d.join("debian.sources")).unwrap();
        let err = host_debian_archive_uri(&dir).unwrap_err().to_string();
        assert!(
            err.contains("aaa.list") && err.contains("REWIND_DEBIAN_MIRROR"),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
