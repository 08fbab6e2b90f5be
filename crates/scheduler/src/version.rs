//! Version constraints (`version` / `semver` operators): comma-separated clauses of
//! `=`, `!=`, `>`, `>=`, `<`, `<=` and the pessimistic `~>`.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    segments: Vec<u64>,
    pre: Option<String>,
}

/// Parses `v1.2.3`, `1.2`, `6.1.0-18-amd64` (prerelease `18-amd64`), `1.2.3+build`.
pub(crate) fn parse(text: &str) -> Option<Version> {
    let t = text.trim().trim_start_matches('v');
    let t = t.split('+').next().unwrap_or(t);
    let (core, pre) = match t.split_once('-') {
        Some((c, p)) => (c, Some(p.to_string())),
        None => (t, None),
    };
    let segments = core
        .split('.')
        .map(|s| s.parse::<u64>().ok())
        .collect::<Option<Vec<_>>>()?;
    if segments.is_empty() {
        return None;
    }
    Some(Version { segments, pre })
}

fn segment(v: &Version, i: usize) -> u64 {
    v.segments.get(i).copied().unwrap_or(0)
}

fn compare(a: &Version, b: &Version) -> Ordering {
    let n = a.segments.len().max(b.segments.len());
    for i in 0..n {
        match segment(a, i).cmp(&segment(b, i)) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    match (&a.pre, &b.pre) {
        (None, None) => Ordering::Equal,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(y),
    }
}

/// True when `version` satisfies every clause of `constraint`. Unparseable input never matches.
pub(crate) fn matches(version: &str, constraint: &str) -> bool {
    let Some(v) = parse(version) else {
        return false;
    };
    constraint.split(',').all(|clause| {
        let clause = clause.trim();
        let (op, rest) = ["~>", ">=", "<=", "!=", ">", "<", "="]
            .iter()
            .find_map(|op| clause.strip_prefix(op).map(|r| (*op, r)))
            .unwrap_or(("=", clause));
        let Some(want) = parse(rest) else {
            return false;
        };
        let ord = compare(&v, &want);
        match op {
            "=" => ord == Ordering::Equal,
            "!=" => ord != Ordering::Equal,
            ">" => ord == Ordering::Greater,
            ">=" => ord != Ordering::Less,
            "<" => ord == Ordering::Less,
            "<=" => ord != Ordering::Greater,
            _ => {
                // ~> 1.2.3 means >= 1.2.3 and < 1.3; ~> 1.2 means >= 1.2 and < 2.
                if ord == Ordering::Less {
                    return false;
                }
                let mut upper = want.segments.clone();
                if upper.len() > 1 {
                    upper.pop();
                }
                if let Some(last) = upper.last_mut() {
                    *last += 1;
                }
                let upper = Version {
                    segments: upper,
                    pre: None,
                };
                compare(
                    &Version {
                        pre: None,
                        ..v.clone()
                    },
                    &upper,
                ) == Ordering::Less
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn version_clauses() {
        assert!(matches("1.2.3", ">= 1.0, < 2.0"));
        assert!(!matches("2.0.0", ">= 1.0, < 2.0"));
        assert!(matches("6.1.0-18-amd64", ">= 5.10"));
        assert!(matches("1.2.9", "~> 1.2.3"));
        assert!(!matches("1.3.0", "~> 1.2.3"));
        assert!(matches("1.9", "~> 1.2"));
        assert!(!matches("2.0", "~> 1.2"));
        assert!(matches("v1.2.3", "= 1.2.3"));
        assert!(!matches("abc", ">= 1"));
        assert!(!matches("1.0", ">= x"));
    }
}
