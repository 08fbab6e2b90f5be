//! The HCL2 functions job files may call: the go-cty stdlib subset Nomad offers that needs no
//! file system, clock or randomness (string, collection, numeric, encoding and conversion
//! functions). `can` and `try` are handled by the evaluator because they need unevaluated
//! arguments.

use crate::values::{number, to_f64, type_name};
use serde_json::{Map, Value};

/// A value rendered into a string template: strings as they are, numbers and bools in HCL form.
pub(crate) fn to_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err("cannot use a null value in a string".into()),
        other => Err(format!("cannot use a {} in a string", type_name(other))),
    }
}

fn arity(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!("expected {n} argument(s), got {}", args.len()))
    }
}

fn str_arg(args: &[Value], i: usize) -> Result<String, String> {
    args.get(i)
        .ok_or_else(|| format!("missing argument {}", i + 1))
        .and_then(to_string)
}

fn num_arg(args: &[Value], i: usize) -> Result<f64, String> {
    let v = args
        .get(i)
        .ok_or_else(|| format!("missing argument {}", i + 1))?;
    to_f64(v).ok_or_else(|| {
        format!(
            "argument {} must be a number, found {}",
            i + 1,
            type_name(v)
        )
    })
}

fn list_arg(args: &[Value], i: usize) -> Result<Vec<Value>, String> {
    match args.get(i) {
        Some(Value::Array(a)) => Ok(a.clone()),
        Some(other) => Err(format!(
            "argument {} must be a list, found {}",
            i + 1,
            type_name(other)
        )),
        None => Err(format!("missing argument {}", i + 1)),
    }
}

fn map_arg(args: &[Value], i: usize) -> Result<Map<String, Value>, String> {
    match args.get(i) {
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(other) => Err(format!(
            "argument {} must be a map, found {}",
            i + 1,
            type_name(other)
        )),
        None => Err(format!("missing argument {}", i + 1)),
    }
}

fn regex_arg(args: &[Value], i: usize) -> Result<regex::Regex, String> {
    let pattern = str_arg(args, i)?;
    regex::Regex::new(&pattern).map_err(|e| format!("invalid regular expression: {e}"))
}

/// Calls the function `name`.
pub(crate) fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
    let a = &args;
    let s = |i| str_arg(a, i);
    Ok(match name {
        "upper" => Value::from(s(0)?.to_uppercase()),
        "lower" => Value::from(s(0)?.to_lowercase()),
        "title" => Value::from(
            s(0)?
                .split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "trimspace" => Value::from(s(0)?.trim()),
        "chomp" => Value::from(s(0)?.trim_end_matches(['\n', '\r'])),
        "trim" => {
            let cut = s(1)?;
            Value::from(s(0)?.trim_matches(|c| cut.contains(c)))
        }
        "trimprefix" => {
            let v = s(0)?;
            Value::from(v.strip_prefix(s(1)?.as_str()).unwrap_or(&v))
        }
        "trimsuffix" => {
            let v = s(0)?;
            Value::from(v.strip_suffix(s(1)?.as_str()).unwrap_or(&v))
        }
        "strlen" => Value::from(s(0)?.chars().count()),
        "strrev" => Value::from(s(0)?.chars().rev().collect::<String>()),
        "substr" => {
            let chars: Vec<char> = s(0)?.chars().collect();
            let offset = num_arg(a, 1)? as i64;
            let length = num_arg(a, 2)? as i64;
            let len = chars.len() as i64;
            let start = if offset < 0 {
                (len + offset).max(0)
            } else {
                offset.min(len)
            };
            let end = if length < 0 {
                len
            } else {
                (start + length).min(len)
            };
            Value::from(
                chars
                    .get(start as usize..end as usize)
                    .unwrap_or_default()
                    .iter()
                    .collect::<String>(),
            )
        }
        "replace" => {
            let (v, from, to) = (s(0)?, s(1)?, s(2)?);
            if from.len() > 2 && from.starts_with('/') && from.ends_with('/') {
                let re = regex::Regex::new(&from[1..from.len() - 1])
                    .map_err(|e| format!("invalid regular expression: {e}"))?;
                Value::from(re.replace_all(&v, to.as_str()).into_owned())
            } else {
                Value::from(v.replace(&from, &to))
            }
        }
        "regex_replace" => Value::from(
            regex_arg(a, 1)?
                .replace_all(&s(0)?, s(2)?.as_str())
                .into_owned(),
        ),
        "regex" => {
            let re = regex_arg(a, 1)?;
            let v = s(0)?;
            let caps = re.captures(&v).ok_or("pattern did not match")?;
            if caps.len() == 1 {
                Value::from(caps.get(0).map_or("", |m| m.as_str()))
            } else {
                Value::Array(
                    caps.iter()
                        .skip(1)
                        .map(|m| Value::from(m.map_or("", |m| m.as_str())))
                        .collect(),
                )
            }
        }
        "regexall" => {
            let re = regex_arg(a, 1)?;
            Value::Array(
                re.find_iter(&s(0)?)
                    .map(|m| Value::from(m.as_str()))
                    .collect(),
            )
        }
        "split" => Value::Array(s(1)?.split(s(0)?.as_str()).map(Value::from).collect()),
        "join" => {
            let sep = s(0)?;
            let mut parts = Vec::new();
            for i in 1..a.len() {
                for item in list_arg(a, i)? {
                    parts.push(to_string(&item)?);
                }
            }
            Value::from(parts.join(&sep))
        }
        "indent" => {
            let pad = " ".repeat(num_arg(a, 0)?.max(0.0) as usize);
            Value::from(s(1)?.replace('\n', &format!("\n{pad}")))
        }
        "format" => Value::from(format(&s(0)?, a.get(1..).unwrap_or_default())?),
        "formatlist" => {
            let fmt = s(0)?;
            let rest = a.get(1..).unwrap_or_default();
            let n = rest
                .iter()
                .filter_map(|v| v.as_array().map(Vec::len))
                .max()
                .unwrap_or(1);
            let mut out = Vec::new();
            for i in 0..n {
                let row: Vec<Value> = rest
                    .iter()
                    .map(|v| match v {
                        Value::Array(items) => items.get(i).cloned().unwrap_or(Value::Null),
                        other => other.clone(),
                    })
                    .collect();
                out.push(Value::from(format(&fmt, &row)?));
            }
            Value::Array(out)
        }
        "length" => Value::from(match a.first() {
            Some(Value::Array(v)) => v.len(),
            Some(Value::Object(o)) => o.len(),
            Some(Value::String(v)) => v.chars().count(),
            Some(other) => return Err(format!("cannot take the length of {}", type_name(other))),
            None => return Err("expected 1 argument".into()),
        }),
        "concat" => {
            let mut out = Vec::new();
            for i in 0..a.len() {
                out.extend(list_arg(a, i)?);
            }
            Value::Array(out)
        }
        "coalesce" => a
            .iter()
            .find(|v| !v.is_null() && v.as_str() != Some(""))
            .cloned()
            .ok_or("no non-null, non-empty argument")?,
        "coalescelist" => a
            .iter()
            .find(|v| v.as_array().is_some_and(|l| !l.is_empty()))
            .cloned()
            .ok_or("no non-empty list argument")?,
        "compact" => Value::Array(
            list_arg(a, 0)?
                .into_iter()
                .filter(|v| !v.is_null() && v.as_str() != Some(""))
                .collect(),
        ),
        "contains" => {
            arity(a, 2)?;
            Value::Bool(list_arg(a, 0)?.contains(&a[1]))
        }
        "index" => {
            arity(a, 2)?;
            let pos = list_arg(a, 0)?
                .iter()
                .position(|v| *v == a[1])
                .ok_or("item not found")?;
            Value::from(pos)
        }
        "distinct" => {
            let mut out: Vec<Value> = Vec::new();
            for v in list_arg(a, 0)? {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Value::Array(out)
        }
        "element" => {
            let list = list_arg(a, 0)?;
            if list.is_empty() {
                return Err("cannot use element() on an empty list".into());
            }
            let i = num_arg(a, 1)?.max(0.0) as usize;
            list[i % list.len()].clone()
        }
        "flatten" => {
            fn flat(v: Vec<Value>, out: &mut Vec<Value>) {
                for item in v {
                    match item {
                        Value::Array(inner) => flat(inner, out),
                        other => out.push(other),
                    }
                }
            }
            let mut out = Vec::new();
            flat(list_arg(a, 0)?, &mut out);
            Value::Array(out)
        }
        "keys" => Value::Array(map_arg(a, 0)?.keys().cloned().map(Value::from).collect()),
        "values" => Value::Array(map_arg(a, 0)?.values().cloned().collect()),
        "lookup" => {
            let m = map_arg(a, 0)?;
            match m.get(&s(1)?) {
                Some(v) => v.clone(),
                None => a
                    .get(2)
                    .cloned()
                    .ok_or("key not found and no default given")?,
            }
        }
        "merge" => {
            let mut out = Map::new();
            for i in 0..a.len() {
                if a[i].is_null() {
                    continue;
                }
                out.extend(map_arg(a, i)?);
            }
            Value::Object(out)
        }
        "zipmap" => {
            let (k, v) = (list_arg(a, 0)?, list_arg(a, 1)?);
            if k.len() != v.len() {
                return Err("the key and value lists must have the same length".into());
            }
            let mut out = Map::new();
            for (key, val) in k.iter().zip(v) {
                out.insert(to_string(key)?, val);
            }
            Value::Object(out)
        }
        "range" => {
            let (start, end, step) = match a.len() {
                1 => (0.0, num_arg(a, 0)?, 1.0),
                2 => (num_arg(a, 0)?, num_arg(a, 1)?, 1.0),
                3 => (num_arg(a, 0)?, num_arg(a, 1)?, num_arg(a, 2)?),
                _ => return Err("expected 1 to 3 arguments".into()),
            };
            if step == 0.0 {
                return Err("step must not be zero".into());
            }
            let mut out = Vec::new();
            let mut x = start;
            while (step > 0.0 && x < end) || (step < 0.0 && x > end) {
                if out.len() >= 1024 {
                    return Err("more than 1024 elements".into());
                }
                out.push(number(x));
                x += step;
            }
            Value::Array(out)
        }
        "reverse" => Value::Array(list_arg(a, 0)?.into_iter().rev().collect()),
        "slice" => {
            let list = list_arg(a, 0)?;
            let (from, to) = (num_arg(a, 1)? as usize, num_arg(a, 2)? as usize);
            Value::Array(
                list.get(from..to)
                    .ok_or("slice bounds out of range")?
                    .to_vec(),
            )
        }
        "sort" => {
            let mut items = list_arg(a, 0)?
                .iter()
                .map(to_string)
                .collect::<Result<Vec<_>, _>>()?;
            items.sort();
            Value::Array(items.into_iter().map(Value::from).collect())
        }
        "min" | "max" => {
            let mut nums = Vec::new();
            for i in 0..a.len() {
                nums.push(num_arg(a, i)?);
            }
            let r = if name == "min" {
                nums.into_iter().reduce(f64::min)
            } else {
                nums.into_iter().reduce(f64::max)
            };
            number(r.ok_or("needs at least one argument")?)
        }
        "abs" => number(num_arg(a, 0)?.abs()),
        "ceil" => number(num_arg(a, 0)?.ceil()),
        "floor" => number(num_arg(a, 0)?.floor()),
        "signum" => number(num_arg(a, 0)?.signum()),
        "pow" => number(num_arg(a, 0)?.powf(num_arg(a, 1)?)),
        "parseint" => {
            let base = num_arg(a, 1)? as u32;
            if !(2..=36).contains(&base) {
                return Err("base must be between 2 and 36".into());
            }
            Value::from(i64::from_str_radix(&s(0)?, base).map_err(|e| e.to_string())?)
        }
        "tostring" => Value::from(to_string(a.first().ok_or("expected 1 argument")?)?),
        "tonumber" => number(num_arg(a, 0)?),
        "tobool" => match a.first() {
            Some(Value::Bool(b)) => Value::Bool(*b),
            Some(Value::String(v)) if v == "true" || v == "false" => Value::Bool(v == "true"),
            _ => return Err("expected a bool or \"true\"/\"false\"".into()),
        },
        "tolist" | "toset" => {
            let mut list = list_arg(a, 0)?;
            if name == "toset" {
                let mut seen = Vec::new();
                list.retain(|v| {
                    let keep = !seen.contains(v);
                    seen.push(v.clone());
                    keep
                });
            }
            Value::Array(list)
        }
        "tomap" => Value::Object(map_arg(a, 0)?),
        "jsonencode" => Value::from(
            serde_json::to_string(a.first().ok_or("expected 1 argument")?)
                .map_err(|e| e.to_string())?,
        ),
        "jsondecode" => serde_json::from_str(&s(0)?).map_err(|e| format!("invalid JSON: {e}"))?,
        "base64encode" => Value::from(base64_encode(s(0)?.as_bytes())),
        "urlencode" => Value::from(
            s(0)?
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>(),
        ),
        _ => return Err(format!("unknown function {name:?}")),
    })
}

/// Go's `fmt`-style formatting as cty's `format` does it: `%s %d %f %t %v %q %%`, with an
/// optional width and precision.
fn format(fmt: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '.' || d == '-' || d == '+' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let verb = chars.next().ok_or("format string ends with %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args
            .get(next)
            .ok_or("not enough arguments for the format string")?;
        next += 1;
        let (width, precision) = match spec.trim_start_matches(['-', '+']).split_once('.') {
            Some((w, p)) => (w.parse::<usize>().ok(), p.parse::<usize>().ok()),
            None => (
                spec.trim_start_matches(['-', '+']).parse::<usize>().ok(),
                None,
            ),
        };
        let zero = spec.trim_start_matches(['-', '+']).starts_with('0');
        let text = match verb {
            's' | 'v' => {
                to_string(arg).or_else(|_| serde_json::to_string(arg).map_err(|e| e.to_string()))?
            }
            'q' => serde_json::to_string(&to_string(arg)?).map_err(|e| e.to_string())?,
            'd' => {
                let n = to_f64(arg)
                    .ok_or_else(|| format!("%d needs a number, found {}", type_name(arg)))?;
                format!("{}", n.trunc() as i64)
            }
            'f' => {
                let n = to_f64(arg)
                    .ok_or_else(|| format!("%f needs a number, found {}", type_name(arg)))?;
                format!("{:.*}", precision.unwrap_or(6), n)
            }
            't' => match arg {
                Value::Bool(b) => b.to_string(),
                other => return Err(format!("%t needs a bool, found {}", type_name(other))),
            },
            other => return Err(format!("unsupported format verb %{other}")),
        };
        let width = width.unwrap_or(0);
        let pad = width.saturating_sub(text.chars().count());
        if spec.starts_with('-') {
            out.push_str(&text);
            out.push_str(&" ".repeat(pad));
        } else {
            out.push_str(&(if zero { "0" } else { " " }).repeat(pad));
            out.push_str(&text);
        }
    }
    Ok(out)
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(TABLE[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(name: &str, args: Value) -> Value {
        call(name, args.as_array().unwrap().clone()).unwrap()
    }

    #[test]
    fn string_functions() {
        assert_eq!(c("upper", json!(["ab"])), "AB");
        assert_eq!(c("lower", json!(["AB"])), "ab");
        assert_eq!(c("join", json!([",", ["a", "b"], ["c"]])), "a,b,c");
        assert_eq!(c("split", json!([",", "a,b"])), json!(["a", "b"]));
        assert_eq!(
            c("format", json!(["%s-%03d %q %%", "web", 7, "x"])),
            "web-007 \"x\" %"
        );
        assert_eq!(c("replace", json!(["a-b-c", "-", "_"])), "a_b_c");
        assert_eq!(c("substr", json!(["hello", 1, 3])), "ell");
        assert_eq!(c("trimprefix", json!(["v1.2", "v"])), "1.2");
        assert_eq!(c("title", json!(["hello world"])), "Hello World");
        assert_eq!(c("regex_replace", json!(["a1b22", "[0-9]+", "#"])), "a#b#");
    }

    #[test]
    fn collection_and_encoding_functions() {
        assert_eq!(c("length", json!([["a", "b"]])), 2);
        assert_eq!(
            c("concat", json!([["a"], ["b", "c"]])),
            json!(["a", "b", "c"])
        );
        assert_eq!(
            c("merge", json!([{"a": 1}, {"b": 2}])),
            json!({"a": 1, "b": 2})
        );
        assert_eq!(c("lookup", json!([{"a": 1}, "b", 5])), 5);
        assert_eq!(c("range", json!([3])), json!([0, 1, 2]));
        assert_eq!(
            c("jsonencode", json!([{"a": [1, true]}])),
            "{\"a\":[1,true]}"
        );
        assert_eq!(c("jsondecode", json!(["[1,2]"])), json!([1, 2]));
        assert_eq!(c("base64encode", json!(["hello"])), "aGVsbG8=");
        assert_eq!(c("max", json!([1, 5, 3])), 5);
        assert_eq!(c("coalesce", json!(["", null, "x"])), "x");
        assert_eq!(
            c("flatten", json!([[["a"], ["b", ["c"]]]])),
            json!(["a", "b", "c"])
        );
    }

    #[test]
    fn bad_calls_are_errors_not_panics() {
        assert!(call("nope", vec![]).is_err());
        assert!(call("upper", vec![]).is_err());
        assert!(call("element", vec![json!([]), json!(1)]).is_err());
        assert!(call("format", vec![json!("%d"), json!("x")]).is_err());
        assert!(call("range", vec![json!(0), json!(10), json!(0)]).is_err());
    }
}
