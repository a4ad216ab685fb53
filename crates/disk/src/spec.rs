//! The `--disk PATH[,ro][,persist]` argument.

use std::path::PathBuf;
use std::str::FromStr;

use crate::DiskError;

/// What `--disk PATH[,ro][,persist]` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// The image file.
    pub path: PathBuf,
    /// `ro`: the guest may not write.
    pub read_only: bool,
    /// `persist`: writes go into the (raw) image file instead of an overlay.
    pub persist: bool,
}

impl DiskSpec {
    /// Parses `PATH[,ro][,persist]`. The path cannot contain a comma.
    pub fn parse(arg: &str) -> Result<DiskSpec, DiskError> {
        let bad = |reason: String| DiskError::Spec {
            arg: arg.to_owned(),
            reason,
        };
        let mut parts = arg.split(',');
        let path = parts.next().unwrap_or_default();
        if path.is_empty() {
            return Err(bad("the image path is empty".into()));
        }
        let mut spec = DiskSpec {
            path: PathBuf::from(path),
            read_only: false,
            persist: false,
        };
        for option in parts {
            match option {
                "ro" => spec.read_only = true,
                "persist" => spec.persist = true,
                "" => return Err(bad("there is an empty option after a comma".into())),
                other => {
                    return Err(bad(format!(
                        "the option {other:?} is unknown (the options are `ro` and `persist`)"
                    )))
                }
            }
        }
        if spec.read_only && spec.persist {
            return Err(bad(
                "`ro` and `persist` contradict each other: `persist` writes into the image, `ro` forbids writes"
                    .into(),
            ));
        }
        Ok(spec)
    }
}

impl FromStr for DiskSpec {
    type Err = DiskError;

    fn from_str(s: &str) -> Result<DiskSpec, DiskError> {
        DiskSpec::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str, read_only: bool, persist: bool) -> DiskSpec {
        DiskSpec {
            path: path.into(),
            read_only,
            persist,
        }
    }

    #[test]
    fn parses_paths_and_options() {
        assert_eq!(
            DiskSpec::parse("img.raw").unwrap(),
            spec("img.raw", false, false)
        );
        assert_eq!(
            DiskSpec::parse("img.qcow2,ro").unwrap(),
            spec("img.qcow2", true, false)
        );
        assert_eq!(
            DiskSpec::parse("/d/x,persist").unwrap(),
            spec("/d/x", false, true)
        );
        assert_eq!(
            "a,ro,ro".parse::<DiskSpec>().unwrap(),
            spec("a", true, false)
        );
    }

    #[test]
    fn refuses_bad_arguments_with_a_sentence() {
        let e = DiskSpec::parse("x,rw").unwrap_err().to_string();
        assert_eq!(
            e,
            "bad --disk argument \"x,rw\": the option \"rw\" is unknown (the options are `ro` and `persist`)"
        );
        assert!(DiskSpec::parse("x,ro,persist")
            .unwrap_err()
            .to_string()
            .contains("contradict"));
        assert!(DiskSpec::parse("")
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(DiskSpec::parse(",ro").is_err());
        assert!(DiskSpec::parse("x,").is_err());
    }
}
