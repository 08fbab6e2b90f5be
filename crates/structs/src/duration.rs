//! Go-style duration strings (`"1h30m"`, `"250ms"`, `"10s"`), as job files and `?wait=` use.

use thiserror::Error;

/// A duration string that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    /// The text given.
    pub input: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

/// Parses a Go duration string into nanoseconds. A bare `0` is allowed.
pub fn parse_duration(input: &str) -> Result<i64, DurationError> {
    let err = |reason| DurationError {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| err("bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(err("missing unit (use ns, us, ms, s, m or h)")),
            _ => return Err(err("unknown unit (use ns, us, ms, s, m or h)")),
        };
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return Err(err("too large"));
    }
    let ns = total.round() as i64;
    Ok(if neg { -ns } else { ns })
}

/// Formats nanoseconds the way Go prints a duration (`1h30m0s`, `250ms`, `0s`).
pub fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let ns = ns.unsigned_abs();
    if ns < 1_000_000_000 {
        return if ns.is_multiple_of(1_000_000) {
            format!("{sign}{}ms", ns / 1_000_000)
        } else if ns.is_multiple_of(1_000) {
            format!("{sign}{}µs", ns / 1_000)
        } else {
            format!("{sign}{ns}ns")
        };
    }
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::from(sign);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac == 0 {
        out.push_str(&format!("{s}s"));
    } else {
        let f = format!("{frac:09}");
        out.push_str(&format!("{s}.{}s", f.trim_end_matches('0')));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("10s").unwrap(), 10_000_000_000);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("250ms").unwrap(), 250_000_000);
        assert_eq!(parse_duration("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_duration(5_400_000_000_000), "1h30m0s");
        assert_eq!(format_duration(250_000_000), "250ms");
        assert_eq!(format_duration(10_000_000_000), "10s");
        assert_eq!(format_duration(1_500_000_000), "1.5s");
    }
}
