//! Output helpers shared by the commands: Nomad-style columns and key/value blocks, times,
//! sizes, and the placement-failure lines.

use std::time::{SystemTime, UNIX_EPOCH};

/// Columns separated by two spaces, each as wide as its widest cell (Nomad's `columnize`);
/// trailing spaces are trimmed.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A header row from string literals.
pub(crate) fn header(cols: &[&str]) -> Vec<String> {
    cols.iter().map(|s| s.to_string()).collect()
}

/// `Key = value` lines aligned on `=`.
pub(crate) fn kv(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<width$} = {v}").trim_end().to_string() + "\n")
        .collect()
}

/// Unix nanoseconds now.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 in UTC, seconds precision (Nomad's `formatTime`); empty for unset times.
pub(crate) fn rfc3339(ns: i64) -> String {
    if ns <= 0 {
        return String::new();
    }
    structs::time::rfc3339(ns)
}

/// An RFC 3339 string without its fractional seconds (`2023-11-14T22:13:20.123Z` ->
/// `2023-11-14T22:13:20Z`), as Nomad shows times.
pub(crate) fn whole_seconds(t: &str) -> String {
    match t.find('.') {
        Some(dot) => {
            let rest = &t[dot + 1..];
            let zone = rest
                .find(|c: char| !c.is_ascii_digit())
                .map(|i| &rest[i..])
                .unwrap_or("");
            format!("{}{zone}", &t[..dot])
        }
        None => t.to_string(),
    }
}

/// Nomad's relative time (`12s ago`, `5m3s ago`, `2h1m ago`, `3d2h ago`) as seen at `now`.
pub(crate) fn ago_at(now: i64, ns: i64) -> String {
    if ns <= 0 {
        return "<none>".into();
    }
    let secs = ((now - ns) / 1_000_000_000).max(0);
    let (d, h, m, s) = (
        secs / 86_400,
        (secs % 86_400) / 3600,
        (secs % 3600) / 60,
        secs % 60,
    );
    if d > 0 {
        format!("{d}d{h}h ago")
    } else if h > 0 {
        format!("{h}h{m}m ago")
    } else if m > 0 {
        format!("{m}m{s}s ago")
    } else {
        format!("{s}s ago")
    }
}

/// A relative time as seen at `now`, or the exact RFC 3339 time with `-verbose` (as Nomad's
/// tables do).
pub(crate) fn when_at(now: i64, ns: i64, verbose: bool) -> String {
    if verbose {
        rfc3339(ns)
    } else {
        ago_at(now, ns)
    }
}

/// The first 8 characters of an ID unless `verbose`.
pub(crate) fn id(id: &str, verbose: bool) -> String {
    if verbose {
        id.to_string()
    } else {
        structs::short_id(id).to_string()
    }
}

/// `<none>` for empty strings.
pub(crate) fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.to_string()
    }
}

/// `1023 B`, `4.0 KiB`, `12 MiB` (powers of 1024, one decimal under 10).
pub(crate) fn ibytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

/// Mebibytes the way Nomad's `humanize.IBytes` shows them: `256 MiB`, `7.7 GiB`.
pub(crate) fn mib(mb: i64) -> String {
    if mb >= 1024 * 1024 {
        format!("{:.1} TiB", mb as f64 / (1024.0 * 1024.0))
    } else if mb >= 1024 {
        format!("{:.1} GiB", mb as f64 / 1024.0)
    } else {
        format!("{mb} MiB")
    }
}

/// Why a group could not be placed, one `* ...` line per reason (Nomad's wording).
pub(crate) fn alloc_metrics(m: &structs::AllocMetric, indent: &str) -> String {
    let mut out = String::new();
    if m.nodes_evaluated == 0 {
        out.push_str(&format!(
            "{indent}* No nodes were eligible for evaluation\n"
        ));
    }
    for (dc, n) in &m.nodes_available {
        if *n == 0 {
            out.push_str(&format!(
                "{indent}* No nodes are available in datacenter {dc:?}\n"
            ));
        }
    }
    for (class, n) in &m.class_filtered {
        out.push_str(&format!(
            "{indent}* Class {class:?}: {n} nodes excluded by filter\n"
        ));
    }
    for (c, n) in &m.constraint_filtered {
        out.push_str(&format!(
            "{indent}* Constraint {c:?}: {n} nodes excluded by filter\n"
        ));
    }
    if m.nodes_exhausted > 0 {
        out.push_str(&format!(
            "{indent}* Resources exhausted on {} nodes\n",
            m.nodes_exhausted
        ));
    }
    for (class, n) in &m.class_exhausted {
        out.push_str(&format!(
            "{indent}* Class {class:?} exhausted on {n} nodes\n"
        ));
    }
    for (dim, n) in &m.dimension_exhausted {
        out.push_str(&format!(
            "{indent}* Dimension {dim:?} exhausted on {n} nodes\n"
        ));
    }
    out
}

/// `Task Group "g" (failed to place N allocation[s]):`.
pub(crate) fn failed_group(group: &str, m: &structs::AllocMetric) -> String {
    let n = m.coalesced_failures + 1;
    let s = if n == 1 { "" } else { "s" };
    format!("Task Group {group:?} (failed to place {n} allocation{s}):")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_trailing_spaces_go() {
        let t = table(&[
            header(&["ID", "Type", "Status"]),
            vec!["example".into(), "service".into(), "running".into()],
            vec!["x".into(), "".into(), "".into()],
        ]);
        assert_eq!(
            t,
            "ID       Type     Status\nexample  service  running\nx\n"
        );
    }

    #[test]
    fn key_values_align() {
        let t = kv(&[("ID", "web".into()), ("Submit Date", "x".into())]);
        assert_eq!(t, "ID          = web\nSubmit Date = x\n");
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(1_700_000_000_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(0), "");
        let now = 1_700_000_000_000_000_000;
        let s = 1_000_000_000;
        assert_eq!(ago_at(now, now - 12 * s), "12s ago");
        assert_eq!(ago_at(now, now - 303 * s), "5m3s ago");
        assert_eq!(ago_at(now, now - (2 * 3600 + 60) * s), "2h1m ago");
        assert_eq!(ago_at(now, now - (3 * 86_400 + 2 * 3600) * s), "3d2h ago");
        assert_eq!(ago_at(now, now + 5 * s), "0s ago");
        assert_eq!(ago_at(now, 0), "<none>");
        assert_eq!(
            whole_seconds("2023-11-14T22:13:20.123456Z"),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            whole_seconds("2023-11-14T22:13:20+01:00"),
            "2023-11-14T22:13:20+01:00"
        );
        assert_eq!(
            whole_seconds("2023-11-14T22:13:20.5+01:00"),
            "2023-11-14T22:13:20+01:00"
        );
        assert_eq!(when_at(now, now, true), "2023-11-14T22:13:20Z");
        assert_eq!(when_at(now, now - s, false), "1s ago");
    }

    #[test]
    fn ids_sizes_and_none() {
        let full = "0b8e2c4a-1234-5678-9abc-def012345678";
        assert_eq!(id(full, false), "0b8e2c4a");
        assert_eq!(id(full, true), full);
        assert_eq!(mib(256), "256 MiB");
        assert_eq!(mib(7885), "7.7 GiB");
        assert_eq!(or_none(""), "<none>");
        assert_eq!(or_none("x"), "x");
    }

    #[test]
    fn metrics_lines() {
        let mut m = structs::AllocMetric {
            nodes_evaluated: 2,
            nodes_exhausted: 1,
            ..Default::default()
        };
        m.constraint_filtered
            .insert("${attr.kernel.name} = linux".into(), 1);
        m.dimension_exhausted.insert("memory".into(), 1);
        let text = alloc_metrics(&m, "  ");
        assert_eq!(
            text,
            "  * Constraint \"${attr.kernel.name} = linux\": 1 nodes excluded by filter\n  \
             * Resources exhausted on 1 nodes\n  * Dimension \"memory\" exhausted on 1 nodes\n"
        );
        assert_eq!(
            failed_group("cache", &m),
            "Task Group \"cache\" (failed to place 1 allocation):"
        );
        m.coalesced_failures = 2;
        assert!(failed_group("cache", &m).contains("3 allocations"));
        let none = alloc_metrics(&structs::AllocMetric::default(), "");
        assert_eq!(none, "* No nodes were eligible for evaluation\n");
    }
}
