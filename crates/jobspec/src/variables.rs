//! HCL2 input variables (`variable "x" {}` with values from defaults, `NOMAD_VAR_x`,
//! `-var-file` and `-var`, in that order of precedence) and `locals {}`.

use crate::body::{BodyReader, Cx};
use crate::error::{JobspecError, SourceMap};
use crate::eval::Evaluator;
use crate::values::type_name;
use crate::ParseOptions;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Attribute, Body};
use hcl::edit::Span;
use serde_json::{Map, Value};
use std::ops::Range;

type Res<T> = Result<T, JobspecError>;

/// The declared type of a variable, as far as converting command-line strings needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VarType {
    Any,
    String,
    Number,
    Bool,
    /// list, set, tuple, map, object: values given as text are parsed as HCL expressions.
    Collection,
}

struct Declared<'b> {
    name: String,
    ty: VarType,
    default: Option<Value>,
    span: Option<Range<usize>>,
    validations: Vec<(&'b Attribute, Option<&'b Attribute>)>,
}

/// Reads `variable` blocks, resolves their values, runs their validations and evaluates the
/// `locals` blocks, leaving `var.*` and `local.*` in `cx.ev`.
pub(crate) fn resolve(cx: &mut Cx<'_>, body: &Body, opts: &ParseOptions) -> Res<()> {
    let mut declared: Vec<Declared<'_>> = Vec::new();
    {
        let top = BodyReader::new(cx, body, "the job file");
        for block in top.blocks("variable")? {
            let name = block.label(cx, "variable")?;
            if declared.iter().any(|d| d.name == name) {
                return Err(cx.map.invalid(
                    block.span.clone(),
                    format!("variable \"{name}\" is declared more than once"),
                ));
            }
            let r = block.reader(cx, format!("variable \"{name}\""));
            r.ignore(&["description", "sensitive", "nullable"]);
            let ty = match block.body.attributes().find(|a| a.key.as_str() == "type") {
                None => VarType::Any,
                Some(attr) => var_type(cx.map, &attr.value)?,
            };
            r.ignore(&["type"]);
            let default = r.value("default")?.map(|(v, _)| v);
            let mut validations = Vec::new();
            for v in r.blocks("validation")? {
                let vr = v.reader(cx, format!("validation of variable \"{name}\""));
                vr.ignore(&["condition", "error_message"]);
                vr.finish()?;
                let condition = v.body.attributes().find(|a| a.key.as_str() == "condition");
                let message = v
                    .body
                    .attributes()
                    .find(|a| a.key.as_str() == "error_message");
                let Some(condition) = condition else {
                    return Err(cx
                        .map
                        .invalid(v.span.clone(), "a validation block needs a condition"));
                };
                validations.push((condition, message));
            }
            r.finish()?;
            declared.push(Declared {
                name,
                ty,
                default,
                span: block.span.clone(),
                validations,
            });
        }
    }

    // Inputs, lowest precedence first; later ones overwrite earlier ones.
    let mut values: Map<String, Value> = Map::new();
    for d in &declared {
        if let Some(v) = &d.default {
            values.insert(d.name.clone(), v.clone());
        }
    }
    for (key, raw) in &opts.env_vars {
        let Some(name) = key.strip_prefix("NOMAD_VAR_") else {
            continue;
        };
        if let Some(d) = declared.iter().find(|d| d.name == name) {
            let v = from_text(d.ty, raw)
                .map_err(|m| general(cx.map.file, format!("invalid value for {key}: {m}")))?;
            values.insert(name.to_string(), v);
        }
    }
    for path in &opts.var_files {
        let file_name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| general(&file_name, format!("cannot read variable file: {e}")))?;
        for (name, v, span) in read_var_file(&file_name, &text)? {
            if !declared.iter().any(|d| d.name == name) {
                if opts.strict {
                    let map = SourceMap::new(&file_name, &text);
                    return Err(map.invalid(span, format!("undefined variable \"{name}\": the job file declares no variable \"{name}\"")));
                }
                tracing::warn!(variable = %name, file = %file_name, "ignoring value for an undeclared variable");
                continue;
            }
            values.insert(name, v);
        }
    }
    for (name, raw) in &opts.vars {
        match declared.iter().find(|d| &d.name == name) {
            Some(d) => {
                let v = from_text(d.ty, raw).map_err(|m| general(cx.map.file, format!("invalid value for -var {name}: {m}")))?;
                values.insert(name.clone(), v);
            }
            None if opts.strict => {
                return Err(general(
                    cx.map.file,
                    format!("undefined variable \"{name}\" given with -var: the job file declares no variable \"{name}\""),
                ))
            }
            None => tracing::warn!(variable = %name, "ignoring -var for an undeclared variable"),
        }
    }
    for d in &declared {
        match values.get(&d.name) {
            None => {
                return Err(cx.map.invalid(
                    d.span.clone(),
                    format!(
                        "variable \"{0}\" has no default and no value was given (use -var {0}=..., -var-file or NOMAD_VAR_{0})",
                        d.name
                    ),
                ))
            }
            Some(v) => check_type(d.ty, v).map_err(|m| cx.map.invalid(d.span.clone(), format!("variable \"{}\": {m}", d.name)))?,
        }
    }
    cx.ev.vars = values;

    for d in &declared {
        for (condition, message) in &d.validations {
            let ok = cx
                .ev
                .eval(&condition.value, &Vec::new())
                .map_err(|e| cx.eval_err(e, condition.value.span()))?;
            if ok != Value::Bool(true) {
                let text = match message {
                    Some(m) => match cx.ev.eval(&m.value, &Vec::new()) {
                        Ok(Value::String(s)) => s,
                        _ => "validation failed".to_string(),
                    },
                    None => "validation failed".to_string(),
                };
                return Err(cx.map.invalid(
                    condition.value.span(),
                    format!("invalid value for variable \"{}\": {text}", d.name),
                ));
            }
        }
    }

    resolve_locals(cx, body)
}

fn resolve_locals(cx: &mut Cx<'_>, body: &Body) -> Res<()> {
    let mut pending: Vec<&Attribute> = Vec::new();
    {
        let top = BodyReader::new(cx, body, "the job file");
        for block in top.blocks("locals")? {
            if !block.labels.is_empty() {
                return Err(cx
                    .map
                    .invalid(block.span.clone(), "a locals block takes no label"));
            }
            for attr in block.body.attributes() {
                if pending.iter().any(|p| p.key.as_str() == attr.key.as_str()) {
                    return Err(cx.map.invalid(
                        attr.key.span(),
                        format!(
                            "local value \"{}\" is defined more than once",
                            attr.key.as_str()
                        ),
                    ));
                }
                pending.push(attr);
            }
            if let Some(b) = block.body.blocks().next() {
                return Err(cx
                    .map
                    .invalid(b.ident.span(), "a locals block holds only arguments"));
            }
        }
    }
    // Locals may refer to each other in any order: evaluate what can be, repeat.
    while !pending.is_empty() {
        let mut progressed = false;
        let mut still = Vec::new();
        let mut last_err = None;
        for attr in pending {
            match cx.ev.eval(&attr.value, &Vec::new()) {
                Ok(v) => {
                    cx.ev.locals.insert(attr.key.as_str().to_string(), v);
                    progressed = true;
                }
                Err(e) if e.missing_local.is_some() => {
                    last_err = Some(e);
                    still.push(attr);
                }
                Err(e) => return Err(cx.eval_err(e, attr.value.span())),
            }
        }
        if !progressed {
            if let Some(mut e) = last_err {
                let is_cycle = e
                    .missing_local
                    .as_ref()
                    .is_some_and(|m| still.iter().any(|a| a.key.as_str() == m));
                if is_cycle {
                    e.message = format!(
                        "{} (local values refer to each other in a cycle)",
                        e.message
                    );
                }
                return Err(cx.eval_err(e, None));
            }
        }
        pending = still;
    }
    Ok(())
}

fn general(file: &str, message: String) -> JobspecError {
    JobspecError::General {
        file: file.to_string(),
        message,
    }
}

fn var_type(map: &SourceMap<'_>, expr: &Expression) -> Res<VarType> {
    let text = expr
        .span()
        .and_then(|s| map.text(&s))
        .map(str::trim)
        .unwrap_or_default();
    let head = text.split('(').next().unwrap_or_default().trim();
    Ok(match head {
        "string" => VarType::String,
        "number" => VarType::Number,
        "bool" => VarType::Bool,
        "any" => VarType::Any,
        "list" | "set" | "tuple" | "map" | "object" => VarType::Collection,
        _ => return Err(map.invalid(expr.span(), format!("unknown variable type {text:?} (use string, number, bool, list(...), map(...), object(...) or any)"))),
    })
}

/// Converts a value given as text (`-var`, `NOMAD_VAR_x`) to the declared type.
fn from_text(ty: VarType, raw: &str) -> Result<Value, String> {
    match ty {
        VarType::Any | VarType::String => Ok(Value::String(raw.to_string())),
        VarType::Number => raw
            .trim()
            .parse::<f64>()
            .map(crate::values::number)
            .map_err(|_| format!("expected a number, found {raw:?}")),
        VarType::Bool => match raw.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true or false, found {raw:?}")),
        },
        VarType::Collection => {
            let expr = hcl::edit::parser::parse_expr(raw)
                .map_err(|e| format!("not a valid HCL value: {}", e.message()))?;
            let map = SourceMap::new("-var", raw);
            Evaluator::new(&map)
                .eval(&expr, &Vec::new())
                .map_err(|e| e.message)
        }
    }
}

fn check_type(ty: VarType, v: &Value) -> Result<(), String> {
    let ok = match ty {
        VarType::Any => true,
        VarType::String => v.is_string() || v.is_number() || v.is_boolean() || v.is_null(),
        VarType::Number => {
            v.is_number()
                || v.as_str().is_some_and(|s| s.trim().parse::<f64>().is_ok())
                || v.is_null()
        }
        VarType::Bool => {
            v.is_boolean() || v.as_str().is_some_and(|s| s == "true" || s == "false") || v.is_null()
        }
        VarType::Collection => v.is_array() || v.is_object() || v.is_null(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "value of type {} does not match the declared type",
            type_name(v)
        ))
    }
}

/// The `name = value` pairs of a `-var-file` (HCL, or JSON when the text starts with `{`).
/// One `name = value` of a variable file, with the span of the name (HCL files only).
type VarFileEntry = (String, Value, Option<Range<usize>>);

fn read_var_file(file: &str, text: &str) -> Res<Vec<VarFileEntry>> {
    let map = SourceMap::new(file, text);
    if text.trim_start().starts_with('{') {
        let obj: Map<String, Value> =
            serde_json::from_str(text).map_err(|e| JobspecError::Syntax {
                file: file.to_string(),
                line: e.line(),
                column: e.column(),
                message: format!("invalid JSON variable file: {e}"),
            })?;
        return Ok(obj.into_iter().map(|(k, v)| (k, v, None)).collect());
    }
    let body = crate::hcl_syntax(file, text)?;
    let ev = Evaluator::new(&map);
    let mut out = Vec::new();
    for structure in body.iter() {
        match structure {
            hcl::edit::structure::Structure::Attribute(attr) => {
                let v = ev
                    .eval(&attr.value, &Vec::new())
                    .map_err(|e| map.invalid(e.span.or(attr.value.span()), e.message))?;
                out.push((attr.key.as_str().to_string(), v, attr.key.span()));
            }
            hcl::edit::structure::Structure::Block(b) => {
                return Err(map.invalid(
                    b.ident.span(),
                    "a variable file holds only name = value arguments",
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const SRC: &str = r#"
variable "dcs" {
  type    = list(string)
  default = ["dc1"]
}
variable "count" {
  type = number
  validation {
    condition     = var.count > 0
    error_message = "count must be positive"
  }
}
variable "name" {}
locals {
  full = "${local.prefix}-${var.name}"
  prefix = upper("svc")
}
"#;

    fn run(opts: &ParseOptions) -> Result<(Value, Value), JobspecError> {
        let map = SourceMap::new("vars.hcl", SRC);
        let body = hcl::edit::parser::parse_body(SRC).unwrap();
        let mut cx = Cx {
            map: &map,
            ev: Evaluator::new(&map),
        };
        resolve(&mut cx, &body, opts)?;
        Ok((
            Value::Object(cx.ev.vars.clone()),
            Value::Object(cx.ev.locals.clone()),
        ))
    }

    fn opts(vars: &[(&str, &str)], env: &[(&str, &str)]) -> ParseOptions {
        ParseOptions {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            env_vars: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            strict: true,
            ..ParseOptions::default()
        }
    }

    #[test]
    fn values_come_from_defaults_env_and_flags_in_order() {
        let (vars, locals) = run(&opts(
            &[("count", "3"), ("name", "web")],
            &[("NOMAD_VAR_name", "env"), ("PATH", "/bin")],
        ))
        .unwrap();
        assert_eq!(
            vars,
            serde_json::json!({"dcs": ["dc1"], "count": 3, "name": "web"})
        );
        assert_eq!(
            locals,
            serde_json::json!({"full": "SVC-web", "prefix": "SVC"})
        );
        let (vars, _) = run(&opts(
            &[("count", "1"), ("dcs", "[\"a\", \"b\"]")],
            &[("NOMAD_VAR_name", "env")],
        ))
        .unwrap();
        assert_eq!(vars["name"], "env");
        assert_eq!(vars["dcs"], serde_json::json!(["a", "b"]));
    }

    #[test]
    fn missing_undeclared_and_invalid_values_are_errors() {
        let err = run(&opts(&[("count", "1")], &[])).unwrap_err().to_string();
        assert!(
            err.starts_with("vars.hcl:13:1: variable \"name\" has no default"),
            "{err}"
        );
        let err = run(&opts(&[("count", "1"), ("name", "x"), ("nope", "1")], &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("undefined variable \"nope\""), "{err}");
        let err = run(&opts(&[("count", "0"), ("name", "x")], &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("count must be positive"), "{err}");
        let err = run(&opts(&[("count", "many"), ("name", "x")], &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a number"), "{err}");
    }

    #[test]
    fn var_files_in_hcl_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let hcl_file = dir.path().join("v.hcl");
        std::fs::write(&hcl_file, "count = 4\nname = \"from-file\"\n").unwrap();
        let json_file = dir.path().join("v.json");
        std::fs::write(&json_file, "{\"name\": \"json\"}").unwrap();
        let mut o = opts(&[], &[]);
        o.var_files = vec![hcl_file, json_file];
        let (vars, _) = run(&o).unwrap();
        assert_eq!(vars["count"], 4);
        assert_eq!(vars["name"], "json");
    }
}
