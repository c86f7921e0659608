//! Human durations (`"300ms"`, `"5m"`, `"72h"`) and sizes (`"512KiB"`, `"1MiB"`).

use std::time::Duration;

/// Parses a duration such as `"250ms"` or `"1h 30m"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?} ({e}); write e.g. \"300ms\", \"5m\", \"72h\""))
}

/// Parses a size such as `"512KiB"`, `"1MiB"` or a plain byte count `"4096"`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let bytes = s
        .trim()
        .parse::<bytesize::ByteSize>()
        .map_err(|e| format!("invalid size {s:?} ({e}); write e.g. \"512KiB\", \"1MiB\""))?
        .as_u64();
    usize::try_from(bytes).map_err(|_| format!("size {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_duration("72h").unwrap(),
            Duration::from_secs(72 * 3600)
        );
        assert!(parse_duration("5 minutes please").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_are_binary_when_written_binary() {
        assert_eq!(parse_size("512KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size("1MiB").unwrap(), 1024 * 1024);
        assert_eq!(parse_size("1 MiB").unwrap(), 1024 * 1024);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
    }
}
