//! Parsing of memory sizes such as `128M` or `1G`.

/// Parses a RAM size: a number with an optional K, M or G suffix (powers of
/// 1024), a whole number of 4 KiB pages, between 1 MiB and 64 GiB.
pub fn parse_mem_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size such as 128M or 1G"))?;
    let multiplier: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(format!("'{text}' has an unknown unit; use K, M or G")),
    };
    let bytes = number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("'{text}' is too large"))?;
    check_mem_size(bytes).map_err(|why| format!("'{text}' {why}"))?;
    Ok(bytes)
}

/// Checks a RAM size that comes from a file (a recording's or snapshot's
/// configuration) as `--mem` would: a hostile one must be an error, not an
/// allocation the host cannot make. Says why not, to follow the size.
pub fn check_mem_size(bytes: u64) -> Result<(), String> {
    if !(1 << 20..=64 << 30).contains(&bytes) {
        return Err("is outside the supported range 1M..64G".to_string());
    }
    if !bytes.is_multiple_of(4096) {
        return Err("is not a whole number of 4 KiB pages".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_mem_size, parse_mem_size};

    #[test]
    fn sizes_from_files_are_held_to_the_same_range() {
        assert_eq!(check_mem_size(1 << 30), Ok(()));
        assert!(check_mem_size(1 << 40).is_err());
        assert!(check_mem_size(0).is_err());
        assert!(check_mem_size((1 << 30) + 1).is_err());
    }

    #[test]
    fn sizes_with_suffixes_parse_as_powers_of_1024() {
        assert_eq!(parse_mem_size("128M"), Ok(128 << 20));
        assert_eq!(parse_mem_size("1G"), Ok(1 << 30));
        assert_eq!(parse_mem_size("2048k"), Ok(2 << 20));
        assert_eq!(parse_mem_size("1048576"), Ok(1 << 20));
    }

    #[test]
    fn bad_sizes_are_rejected_with_a_reason() {
        assert!(parse_mem_size("").is_err());
        assert!(parse_mem_size("12X").is_err());
        assert!(parse_mem_size("0").is_err());
        assert!(parse_mem_size("1048577").unwrap_err().contains("pages"));
        assert!(parse_mem_size("99999999999999999999G").is_err());
        assert!(parse_mem_size("128G").is_err());
    }
}
