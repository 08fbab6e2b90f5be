//! Nomad's users type single-dash long flags (`-detach`, `-address=...`); clap wants `--`.

/// Rewrites `-name` / `-name=value` (two or more letters) to `--name...`, leaving single-letter
/// shorts (`-f`, `-n 5`), values, and everything after `--` alone.
pub(crate) fn normalize(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = false;
    for arg in args {
        if rest {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        let is_long_single = arg.starts_with('-')
            && !arg.starts_with("--")
            && arg
                .get(1..)
                .map(|name| name.split('=').next().unwrap_or(""))
                .is_some_and(|name| {
                    name.len() >= 2
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                });
        if is_long_single {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    fn n(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn single_dash_long_flags_become_double() {
        assert_eq!(
            n(&[
                "caravan",
                "job",
                "run",
                "-detach",
                "-address=http://x:1",
                "-var",
                "a=1",
                "f.hcl"
            ]),
            vec![
                "caravan",
                "job",
                "run",
                "--detach",
                "--address=http://x:1",
                "--var",
                "a=1",
                "f.hcl"
            ]
        );
    }

    #[test]
    fn shorts_values_and_rest_stay() {
        assert_eq!(
            n(&["logs", "-f", "-n", "5", "--tail", "-"]),
            vec!["logs", "-f", "-n", "5", "--tail", "-"]
        );
        assert_eq!(n(&["x", "--", "-detach"]), vec!["x", "--", "-detach"]);
        assert_eq!(
            n(&["x", "-check-index", "5"]),
            vec!["x", "--check-index", "5"]
        );
        assert_eq!(n(&["x", "-1"]), vec!["x", "-1"]);
    }
}
