//! Formatting of Unix-nanosecond timestamps (given, never read from a clock).

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// RFC 3339 in UTC with seconds precision: `2026-11-22T18:30:00Z`.
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// RFC 3339 in UTC with nanoseconds, as Go's `RFC3339Nano` (task `StartedAt`/`FinishedAt`).
pub fn rfc3339_nano(ns: i64) -> String {
    let base = rfc3339(ns);
    let frac = ns.rem_euclid(1_000_000_000);
    if frac == 0 {
        return base;
    }
    let digits = format!("{frac:09}");
    format!(
        "{}.{}Z",
        base.trim_end_matches('Z'),
        digits.trim_end_matches('0')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_795_372_200 * 1_000_000_000),
            "2026-11-22T18:30:00Z"
        );
        assert_eq!(rfc3339(951_782_400 * 1_000_000_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_nano(1_500_000_000), "1970-01-01T00:00:01.5Z");
    }
}
