//! Human durations (`"300ms"`, `"5m"`, `"72h"`) and sizes (`"512KiB"`, `"1MiB"`).

use std::time::Duration;

/// A duration or size that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not a duration.
    #[error("invalid duration {input:?} ({detail}); write e.g. \"300ms\", \"5m\", \"72h\"")]
    Duration {
        /// As written.
        input: String,
        /// The parser's complaint.
        detail: String,
    },
    /// Not a size.
    #[error("invalid size {input:?} ({detail}); write e.g. \"512KiB\", \"1MiB\"")]
    Size {
        /// As written.
        input: String,
        /// The parser's complaint.
        detail: String,
    },
    /// More bytes than this machine can count.
    #[error("size {0:?} is too large")]
    TooLarge(String),
}

/// Parses a duration such as `"250ms"` or `"1h 30m"`.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    humantime::parse_duration(s.trim()).map_err(|e| UnitError::Duration {
        input: s.to_owned(),
        detail: e.to_string(),
    })
}

/// Parses a size such as `"512KiB"`, `"1MiB"` or a plain byte count `"4096"`.
pub fn parse_size(s: &str) -> Result<usize, UnitError> {
    let bytes = s
        .trim()
        .parse::<bytesize::ByteSize>()
        .map_err(|e| UnitError::Size {
            input: s.to_owned(),
            detail: e.to_string(),
        })?
        .as_u64();
    usize::try_from(bytes).map_err(|_| UnitError::TooLarge(s.to_owned()))
}

/// A byte count as the config would write it: `"1MiB"`, `"512KiB"`, else plain bytes.
pub fn format_size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    const GIB: usize = 1024 * MIB;
    match bytes {
        0 => "0".to_owned(),
        b if b % GIB == 0 => format!("{}GiB", b / GIB),
        b if b % MIB == 0 => format!("{}MiB", b / MIB),
        b if b % KIB == 0 => format!("{}KiB", b / KIB),
        b => b.to_string(),
    }
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

    #[test]
    fn formatted_sizes_parse_back() {
        for n in [1, 1000, 1024, 512 * 1024, 1024 * 1024, 3 << 30] {
            assert_eq!(
                parse_size(&format_size(n)).unwrap(),
                n,
                "{}",
                format_size(n)
            );
        }
        assert_eq!(format_size(1024 * 1024), "1MiB");
    }
}
