//! `template` blocks: the text (`data`, or the file `source` in the task directory) rendered
//! into `destination` before the task starts, and read back as environment variables with
//! `env = true`.
//!
//! The language is the part of consul-template's that needs no Consul or Vault: actions
//! between the delimiters (`{{ }}` unless `left_delimiter`/`right_delimiter` say otherwise),
//! with `-` trimming the whitespace beside them; `env "NAME"` (the task's environment),
//! `envOrDefault "NAME" "default"`, comments `/* ... */`, and a quoted string or `.`-free
//! literal printed as is. Anything else (`key`, `service`, `secret`...) is an error that names
//! the function and the line, so a job that needs it fails clearly instead of rendering wrong.

use crate::alloc_dir::inside;
use std::collections::BTreeMap;
use std::path::Path;
use structs::Template;

/// Renders `text` with the task's `env`.
pub(crate) fn render(
    text: &str,
    env: &BTreeMap<String, String>,
    left: &str,
    right: &str,
) -> Result<String, String> {
    let (left, right) = (
        if left.is_empty() { "{{" } else { left },
        if right.is_empty() { "}}" } else { right },
    );
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find(left) {
        let line = 1 + text[..text.len() - rest.len() + open].matches('\n').count();
        let (before, after) = rest.split_at(open);
        let mut after = &after[left.len()..];
        let trim_left = after.starts_with('-');
        if trim_left {
            after = &after[1..];
        }
        out.push_str(if trim_left { before.trim_end() } else { before });
        let close = after
            .find(right)
            .ok_or_else(|| format!("line {line}: unclosed action (no {right:?})"))?;
        let mut action = &after[..close];
        let mut next = &after[close + right.len()..];
        if let Some(a) = action.strip_suffix('-') {
            action = a;
            next = next.trim_start();
        }
        out.push_str(&eval(action.trim(), env).map_err(|e| format!("line {line}: {e}"))?);
        rest = next;
    }
    out.push_str(rest);
    Ok(out)
}

/// Splits an action into words, keeping quoted strings (Go's escapes `\"`, `\\`, `\n`, `\t`).
fn words(action: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = action.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(other) => s.push(other),
                        None => return Err("unterminated string".into()),
                    },
                    Some(other) => s.push(other),
                    None => return Err("unterminated string".into()),
                }
            }
            out.push(format!("\"{s}"));
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
            out.push(w);
        }
    }
    Ok(out)
}

fn eval(action: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    if action.starts_with("/*") && action.ends_with("*/") {
        return Ok(String::new());
    }
    let words = words(action)?;
    let string = |w: Option<&String>, what: &str| -> Result<String, String> {
        match w {
            Some(w) if w.starts_with('"') => Ok(w[1..].to_string()),
            Some(w) => Err(format!("{what} must be a quoted string, got {w}")),
            None => Err(format!("missing {what}")),
        }
    };
    match words.first().map(String::as_str) {
        None => Err("empty action".into()),
        Some(w) if w.starts_with('"') && words.len() == 1 => Ok(w[1..].to_string()),
        Some("env") => {
            let name = string(words.get(1), "the variable name of env")?;
            Ok(env.get(&name).cloned().unwrap_or_default())
        }
        Some("envOrDefault") => {
            let name = string(words.get(1), "the variable name of envOrDefault")?;
            let default = string(words.get(2), "the default of envOrDefault")?;
            Ok(env
                .get(&name)
                .filter(|v| !v.is_empty())
                .cloned()
                .unwrap_or(default))
        }
        Some(f) => Err(format!(
            "function {f:?} is not available on this client (it offers env and envOrDefault)"
        )),
    }
}

/// Parses an env file (`KEY=value` lines, `#` comments, optional `export ` and quotes).
pub(crate) fn parse_env_file(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: {raw:?} is not KEY=value", i + 1))?;
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("line {}: {k:?} is not a variable name", i + 1));
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Renders every template of a task into its directory; returns the variables of those with
/// `env = true`. The error says which template and why.
pub(crate) fn render_all(
    templates: &[Template],
    task_dir: &Path,
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    for t in templates {
        let dest =
            inside(task_dir, &t.dest_path).map_err(|e| format!("template destination {e}"))?;
        let text = if t.source_path.is_empty() {
            t.embedded_tmpl.clone()
        } else {
            let src =
                inside(task_dir, &t.source_path).map_err(|e| format!("template source {e}"))?;
            std::fs::read_to_string(&src)
                .map_err(|e| format!("cannot read template source {}: {e}", src.display()))?
        };
        let rendered = render(&text, env, &t.left_delim, &t.right_delim)
            .map_err(|e| format!("template for {:?}: {e}", t.dest_path))?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&dest, &rendered)
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        if !t.perms.is_empty() {
            use std::os::unix::fs::PermissionsExt;
            let mode = u32::from_str_radix(&t.perms, 8)
                .map_err(|_| format!("template perms {:?} is not an octal mode", t.perms))?;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("cannot set perms on {}: {e}", dest.display()))?;
        }
        if t.envvars {
            vars.extend(
                parse_env_file(&rendered)
                    .map_err(|e| format!("env template {:?}: {e}", t.dest_path))?,
            );
        }
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("NOMAD_ALLOC_ID".to_string(), "a1".to_string()),
            ("PORT".to_string(), "8080".to_string()),
        ])
    }

    #[test]
    fn renders_env_defaults_comments_and_trimming() {
        let text = "id={{ env \"NOMAD_ALLOC_ID\" }}\n{{/* a note */}}port = {{ envOrDefault \"PORT\" \"80\" }}\n\
                    db = {{ envOrDefault \"DB\" \"local\" }}\n   {{- \"!\" -}}   \nend";
        assert_eq!(
            render(text, &env(), "", "").unwrap(),
            "id=a1\nport = 8080\ndb = local!end"
        );
        // Other delimiters leave `{{` alone.
        assert_eq!(
            render("{{ x }} [[ env \"PORT\" ]]", &env(), "[[", "]]").unwrap(),
            "{{ x }} 8080"
        );
    }

    #[test]
    fn what_cannot_render_says_what_and_where() {
        let err = render("a\nb {{ key \"db/url\" }}", &env(), "", "").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(err.contains("function \"key\""), "{err}");
        let err = render("{{ env \"X\"", &env(), "", "").unwrap_err();
        assert!(err.contains("unclosed action"), "{err}");
        let err = render("{{ env X }}", &env(), "", "").unwrap_err();
        assert!(err.contains("must be a quoted string"), "{err}");
    }

    #[test]
    fn env_files_parse_and_bad_lines_are_named() {
        let vars = parse_env_file("# c\nA=1\nexport B=\"two words\"\nC='3'\n\n").unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "3");
        assert!(parse_env_file("A=1\nnonsense\n")
            .unwrap_err()
            .starts_with("line 2"));
    }

    #[test]
    fn templates_render_into_the_task_dir_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("local")).unwrap();
        std::fs::write(dir.path().join("local/in.tpl"), "port={{ env \"PORT\" }}").unwrap();
        let templates = vec![
            Template {
                embedded_tmpl: "ID={{ env \"NOMAD_ALLOC_ID\" }}\n".into(),
                dest_path: "secrets/app.env".into(),
                envvars: true,
                perms: "600".into(),
                ..Default::default()
            },
            Template {
                source_path: "local/in.tpl".into(),
                dest_path: "local/app.conf".into(),
                ..Default::default()
            },
        ];
        let vars = render_all(&templates, dir.path(), &env()).unwrap();
        assert_eq!(vars, BTreeMap::from([("ID".to_string(), "a1".to_string())]));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("local/app.conf")).unwrap(),
            "port=8080"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("secrets/app.env"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let escape = vec![Template {
            embedded_tmpl: "x".into(),
            dest_path: "../../etc/evil".into(),
            ..Default::default()
        }];
        assert!(render_all(&escape, dir.path(), &env())
            .unwrap_err()
            .contains("inside the task directory"));
        // Nor through a symlink that points out (as an unpacked artifact could hold).
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("local/out")).unwrap();
        let through = vec![Template {
            embedded_tmpl: "x".into(),
            dest_path: "local/out/evil".into(),
            ..Default::default()
        }];
        let err = render_all(&through, dir.path(), &env()).unwrap_err();
        assert!(err.contains("inside the task directory"), "{err}");
        assert!(!outside.path().join("evil").exists());
    }
}
