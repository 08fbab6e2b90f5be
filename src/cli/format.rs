//! Output helpers shared by the commands: Nomad-style columns and key/value blocks, times.

use std::time::{SystemTime, UNIX_EPOCH};

/// Columns separated by two spaces, each as wide as its widest cell (Nomad's `columnize`).
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

/// `Key = value` lines aligned on `=`.
pub(crate) fn kv(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<width$} = {v}\n"))
        .collect()
}

/// Unix nanoseconds now.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// RFC 3339 in UTC, seconds precision.
pub(crate) fn rfc3339(ns: i64) -> String {
    structs::time::rfc3339(ns)
}

/// Nomad's relative time: `12s ago`, `5m3s ago`, `2h1m ago`, `3d2h ago`.
pub(crate) fn ago(ns: i64) -> String {
    if ns <= 0 {
        return "<none>".into();
    }
    let secs = ((now_ns() - ns) / 1_000_000_000).max(0);
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

/// The first 8 characters of an ID unless `verbose`.
pub(crate) fn id(id: &str, verbose: bool) -> String {
    if verbose {
        id.to_string()
    } else {
        structs::short_id(id).to_string()
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
    for (dim, n) in &m.dimension_exhausted {
        out.push_str(&format!(
            "{indent}* Dimension {dim:?} exhausted on {n} nodes\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let t = table(&[
            vec!["ID".into(), "Type".into(), "Status".into()],
            vec!["example".into(), "service".into(), "running".into()],
        ]);
        assert_eq!(t, "ID       Type     Status\nexample  service  running\n");
    }

    #[test]
    fn key_values_align() {
        let t = kv(&[("ID", "web".into()), ("Submit Date", "x".into())]);
        assert_eq!(t, "ID          = web\nSubmit Date = x\n");
    }

    #[test]
    fn metrics_lines() {
        let mut m = structs::AllocMetric {
            nodes_evaluated: 2,
            nodes_exhausted: 1,
            ..Default::default()
        };
        m.constraint_filtered.insert("${meta.rack} = r2".into(), 1);
        m.dimension_exhausted.insert("memory".into(), 1);
        let text = alloc_metrics(&m, "  ");
        assert!(text.contains("  * Constraint \"${meta.rack} = r2\": 1 nodes excluded by filter\n"));
        assert!(text.contains("  * Resources exhausted on 1 nodes\n"));
        assert!(text.contains("  * Dimension \"memory\" exhausted on 1 nodes\n"));
    }
}
