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
    if !(1 << 20..=64 << 30).contains(&bytes) {
        return Err(format!("'{text}' is outside the supported range 1M..64G"));
    }
    if bytes % 4096 != 0 {
        return Err(format!("'{text}' is not a whole number of 4 KiB pages"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::parse_mem_size;

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
