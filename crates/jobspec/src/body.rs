//! Reading one HCL block body with type checks, `dynamic` block expansion and a strict check
//! that every argument and block in it is one the reader asked for.

use crate::error::{JobspecError, SourceMap};
use crate::eval::{EvalError, Evaluator, Scope};
use crate::values::type_name;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Attribute, Body, Structure};
use hcl::edit::Span;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Range;

type Res<T> = Result<T, JobspecError>;

/// Everything a decoder needs: positions and the evaluator.
pub(crate) struct Cx<'a> {
    pub(crate) map: &'a SourceMap<'a>,
    pub(crate) ev: Evaluator<'a>,
}

impl Cx<'_> {
    pub(crate) fn eval_err(&self, err: EvalError, fallback: Option<Range<usize>>) -> JobspecError {
        self.map.invalid(err.span.or(fallback), err.message)
    }
}

/// One block found in a body (written out, or produced by a `dynamic` block).
#[derive(Clone)]
pub(crate) struct BlockRef<'b> {
    pub(crate) labels: Vec<String>,
    pub(crate) body: &'b Body,
    /// Where the block starts, for messages.
    pub(crate) span: Option<Range<usize>>,
    pub(crate) scope: Scope,
}

impl<'b> BlockRef<'b> {
    /// A reader for the block's body; `what` names the block in messages (`task "web"`).
    pub(crate) fn reader<'c>(&self, cx: &'c Cx<'c>, what: impl Into<String>) -> BodyReader<'c, 'b> {
        BodyReader {
            cx,
            body: self.body,
            what: what.into(),
            scope: self.scope.clone(),
            known: RefCell::new(Vec::new()),
        }
    }

    /// The block's single label, or an error naming the block type.
    pub(crate) fn label(&self, cx: &Cx<'_>, block: &str) -> Res<String> {
        match self.labels.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(cx.map.invalid(
                self.span.clone(),
                format!("a {block} block needs exactly one label, like {block} \"name\" {{ ... }}"),
            )),
        }
    }
}

/// Reads attributes and blocks of one body, remembering which names are expected.
pub(crate) struct BodyReader<'c, 'b> {
    pub(crate) cx: &'c Cx<'c>,
    body: &'b Body,
    what: String,
    scope: Scope,
    known: RefCell<Vec<String>>,
}

impl<'c, 'b> BodyReader<'c, 'b> {
    /// A reader over a top-level body.
    pub(crate) fn new(cx: &'c Cx<'c>, body: &'b Body, what: impl Into<String>) -> Self {
        Self {
            cx,
            body,
            what: what.into(),
            scope: Vec::new(),
            known: RefCell::new(Vec::new()),
        }
    }

    fn mark(&self, name: &str) {
        self.known.borrow_mut().push(name.to_string());
    }

    /// Accepts these names (blocks or arguments) without reading them: Nomad features Caravan
    /// parses but does not act on.
    pub(crate) fn ignore(&self, names: &[&str]) {
        for n in names {
            self.mark(n);
        }
    }

    /// Fails on the first argument or block no read asked for, or on a repeated argument.
    pub(crate) fn finish(self) -> Res<()> {
        let known = self.known.into_inner();
        let mut seen: Vec<&str> = Vec::new();
        for structure in self.body.iter() {
            match structure {
                Structure::Attribute(attr) => {
                    let key = attr.key.as_str();
                    if !known.iter().any(|k| k == key) {
                        return Err(self.cx.map.invalid(
                            attr.key.span(),
                            format!(
                                "unsupported argument \"{key}\" in {}{}",
                                self.what,
                                suggest(key, &known)
                            ),
                        ));
                    }
                    if seen.contains(&key) {
                        return Err(self.cx.map.invalid(
                            attr.key.span(),
                            format!("argument \"{key}\" is set more than once in {}", self.what),
                        ));
                    }
                    seen.push(key);
                }
                Structure::Block(block) => {
                    let mut ident = block.ident.as_str();
                    if ident == "dynamic" {
                        ident = block.labels.first().map_or("dynamic", |l| l.as_str());
                    }
                    if !known.iter().any(|k| k == ident) {
                        return Err(self.cx.map.invalid(
                            block.ident.span(),
                            format!(
                                "unsupported block type \"{ident}\" in {}{}",
                                self.what,
                                suggest(ident, &known)
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn attr(&self, name: &str) -> Option<&'b Attribute> {
        self.mark(name);
        self.body.attributes().find(|a| a.key.as_str() == name)
    }

    /// Evaluates an expression in this body's scope.
    pub(crate) fn eval(&self, expr: &Expression) -> Res<Value> {
        self.cx
            .ev
            .eval(expr, &self.scope)
            .map_err(|e| self.cx.eval_err(e, expr.span()))
    }

    /// The evaluated value of an argument and the span of its expression.
    pub(crate) fn value(&self, name: &str) -> Res<Option<(Value, Option<Range<usize>>)>> {
        match self.attr(name) {
            None => Ok(None),
            Some(attr) => Ok(Some((self.eval(&attr.value)?, attr.value.span()))),
        }
    }

    fn wrong(
        &self,
        name: &str,
        expected: &str,
        v: &Value,
        span: Option<Range<usize>>,
    ) -> JobspecError {
        let found = match v {
            Value::String(s) => format!("string {s:?}"),
            other => type_name(other).to_string(),
        };
        self.cx.map.invalid(
            span,
            format!(
                "wrong type for \"{name}\" in {}: expected {expected}, found {found}",
                self.what
            ),
        )
    }

    /// A string argument (numbers and bools convert, as in HCL).
    pub(crate) fn string(&self, name: &str) -> Res<Option<String>> {
        let Some((v, span)) = self.value(name)? else {
            return Ok(None);
        };
        match v {
            Value::String(s) => Ok(Some(s)),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            Value::Null => Ok(None),
            other => Err(self.wrong(name, "a string", &other, span)),
        }
    }

    /// A whole-number argument (numeric strings convert, as in HCL).
    pub(crate) fn int(&self, name: &str) -> Res<Option<i64>> {
        let Some((v, span)) = self.value(name)? else {
            return Ok(None);
        };
        let n = match &v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            Value::Null => return Ok(None),
            _ => None,
        };
        n.map(Some)
            .ok_or_else(|| self.wrong(name, "a whole number", &v, span))
    }

    /// A bool argument (`"true"` and `"false"` convert, as in HCL).
    pub(crate) fn boolean(&self, name: &str) -> Res<Option<bool>> {
        let Some((v, span)) = self.value(name)? else {
            return Ok(None);
        };
        match &v {
            Value::Bool(b) => Ok(Some(*b)),
            Value::String(s) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Value::Null => Ok(None),
            _ => Err(self.wrong(name, "a bool", &v, span)),
        }
    }

    /// A duration argument (`"10s"`, `"1h30m"`) in nanoseconds; a bare number is nanoseconds.
    pub(crate) fn duration(&self, name: &str) -> Res<Option<i64>> {
        let Some((v, span)) = self.value(name)? else {
            return Ok(None);
        };
        match &v {
            Value::String(s) => structs::duration::parse_duration(s).map(Some).map_err(|e| {
                self.cx.map.invalid(
                    span,
                    format!("invalid value for \"{name}\" in {}: {e}", self.what),
                )
            }),
            Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64()),
            Value::Null => Ok(None),
            _ => Err(self.wrong(name, "a duration string like \"10s\"", &v, span)),
        }
    }

    /// A list of strings (a single string becomes a one-element list).
    pub(crate) fn strings(&self, name: &str) -> Res<Option<Vec<String>>> {
        let Some((v, span)) = self.value(name)? else {
            return Ok(None);
        };
        let items = match v {
            Value::Array(items) => items,
            Value::String(s) => vec![Value::String(s)],
            Value::Null => return Ok(None),
            other => return Err(self.wrong(name, "a list of strings", &other, span)),
        };
        items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                other => Err(self.wrong(name, "a list of strings", &other, span.clone())),
            })
            .collect::<Res<Vec<_>>>()
            .map(Some)
    }

    /// A map of strings, written as an argument (`meta = { k = "v" }`) or a block
    /// (`meta { k = "v" }`). Several blocks merge.
    pub(crate) fn string_map(&self, name: &str) -> Res<Option<BTreeMap<String, String>>> {
        let mut out: Option<BTreeMap<String, String>> = None;
        if let Some((v, span)) = self.value(name)? {
            let Value::Object(obj) = v else {
                return Err(self.wrong(name, "a map of strings", &v, span));
            };
            out = Some(self.to_string_map(name, obj, span)?);
        }
        for block in self.blocks(name)? {
            let obj = self.block_json(&block)?;
            let map = self.to_string_map(name, obj, block.span.clone())?;
            out.get_or_insert_with(BTreeMap::new).extend(map);
        }
        Ok(out)
    }

    fn to_string_map(
        &self,
        name: &str,
        obj: Map<String, Value>,
        span: Option<Range<usize>>,
    ) -> Res<BTreeMap<String, String>> {
        obj.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                Value::Number(n) => Ok((k, n.to_string())),
                Value::Bool(b) => Ok((k, b.to_string())),
                other => Err(self.wrong(&format!("{name}.{k}"), "a string", &other, span.clone())),
            })
            .collect()
    }

    /// Every block of this type, `dynamic` blocks expanded, in file order.
    pub(crate) fn blocks(&self, name: &str) -> Res<Vec<BlockRef<'b>>> {
        self.mark(name);
        let mut out = Vec::new();
        for block in self.body.blocks() {
            let ident = block.ident.as_str();
            if ident == name {
                out.push(BlockRef {
                    labels: block
                        .labels
                        .iter()
                        .map(|l| l.as_str().to_string())
                        .collect(),
                    body: &block.body,
                    span: block.ident.span(),
                    scope: self.scope.clone(),
                });
            } else if ident == "dynamic" && block.labels.first().is_some_and(|l| l.as_str() == name)
            {
                out.extend(self.expand_dynamic(name, block)?);
            }
        }
        Ok(out)
    }

    fn expand_dynamic(
        &self,
        name: &str,
        block: &'b hcl::edit::structure::Block,
    ) -> Res<Vec<BlockRef<'b>>> {
        let what = format!("dynamic \"{name}\" block");
        let dynamic = BlockRef {
            labels: Vec::new(),
            body: &block.body,
            span: block.ident.span(),
            scope: self.scope.clone(),
        };
        let reader = dynamic.reader(self.cx, what.clone());
        let iterator = match reader.attr("iterator").map(|a| &a.value) {
            None => name.to_string(),
            Some(Expression::Variable(v)) => v.as_str().to_string(),
            Some(other) => {
                return Err(self.cx.map.invalid(
                    other.span(),
                    "iterator must be a bare name, like iterator = port",
                ))
            }
        };
        let Some((for_each, span)) = reader.value("for_each")? else {
            return Err(self.cx.map.invalid(
                block.ident.span(),
                format!("{what} needs a for_each argument"),
            ));
        };
        let items: Vec<(Value, Value)> = match for_each {
            Value::Array(a) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::from(i), v))
                .collect(),
            Value::Object(o) => o.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
            Value::Null => Vec::new(),
            other => return Err(reader.wrong("for_each", "a list or map", &other, span)),
        };
        let labels_expr = reader.attr("labels").map(|a| &a.value);
        let content = reader.blocks("content")?;
        reader.finish()?;
        let [content] = content.as_slice() else {
            return Err(self.cx.map.invalid(
                block.ident.span(),
                format!("{what} needs exactly one content block"),
            ));
        };
        let mut out = Vec::new();
        for (key, value) in items {
            let mut scope = self.scope.clone();
            let mut it = Map::new();
            it.insert("key".into(), key);
            it.insert("value".into(), value);
            scope.push((iterator.clone(), Value::Object(it)));
            let labels = match labels_expr {
                None => Vec::new(),
                Some(expr) => match self
                    .cx
                    .ev
                    .eval(expr, &scope)
                    .map_err(|e| self.cx.eval_err(e, expr.span()))?
                {
                    Value::Array(items) => items
                        .iter()
                        .map(crate::funcs::to_string)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|m| self.cx.map.invalid(expr.span(), m))?,
                    other => return Err(reader_wrong(self, "labels", &other, expr.span())),
                },
            };
            out.push(BlockRef {
                labels,
                body: content.body,
                span: content.span.clone(),
                scope,
            });
        }
        Ok(out)
    }

    /// At most one block of this type.
    pub(crate) fn block(&self, name: &str) -> Res<Option<BlockRef<'b>>> {
        let mut blocks = self.blocks(name)?;
        if blocks.len() > 1 {
            let second = blocks.swap_remove(1);
            return Err(self.cx.map.invalid(
                second.span,
                format!("only one \"{name}\" block is allowed in {}", self.what),
            ));
        }
        Ok(blocks.pop())
    }

    /// A block body as free-form JSON (driver `config`, scaling `policy`): arguments as written,
    /// nested blocks as lists of objects (labelled ones nested under their labels), as Nomad's
    /// API represents them.
    pub(crate) fn block_json(&self, block: &BlockRef<'b>) -> Res<Map<String, Value>> {
        let mut out = Map::new();
        for structure in block.body.iter() {
            match structure {
                Structure::Attribute(attr) => {
                    let v = self
                        .cx
                        .ev
                        .eval(&attr.value, &block.scope)
                        .map_err(|e| self.cx.eval_err(e, attr.value.span()))?;
                    out.insert(attr.key.as_str().to_string(), v);
                }
                Structure::Block(b) => {
                    let ident = if b.ident.as_str() == "dynamic" {
                        b.labels.first().map_or("dynamic", |l| l.as_str())
                    } else {
                        b.ident.as_str()
                    };
                    let reader = BodyReader {
                        cx: self.cx,
                        body: block.body,
                        what: String::new(),
                        scope: block.scope.clone(),
                        known: RefCell::new(Vec::new()),
                    };
                    if out.contains_key(ident) {
                        continue;
                    }
                    let mut items = Vec::new();
                    for inner in reader.blocks(ident)? {
                        let mut value = Value::Object(self.block_json(&inner)?);
                        for label in inner.labels.iter().rev() {
                            let mut wrap = Map::new();
                            wrap.insert(label.clone(), Value::Array(vec![value]));
                            value = Value::Object(wrap);
                        }
                        items.push(value);
                    }
                    out.insert(ident.to_string(), Value::Array(items));
                }
            }
        }
        Ok(out)
    }
}

fn reader_wrong(
    r: &BodyReader<'_, '_>,
    name: &str,
    v: &Value,
    span: Option<Range<usize>>,
) -> JobspecError {
    r.wrong(name, "a list of strings", v, span)
}

/// `; did you mean "x"?` when a known name is close to the unknown one.
fn suggest(name: &str, known: &[String]) -> String {
    known
        .iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!("; did you mean \"{k}\"?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_reader<T>(src: &str, f: impl FnOnce(BodyReader<'_, '_>) -> T) -> T {
        let map = SourceMap::new("t.hcl", src);
        let body = hcl::edit::parser::parse_body(src).unwrap();
        let cx = Cx {
            map: &map,
            ev: Evaluator::new(&map),
        };
        let reader = BodyReader::new(&cx, &body, "test block");
        f(reader)
    }

    #[test]
    fn typed_reads_convert_like_hcl() {
        with_reader(
            "a = \"3\"\nb = true\nc = \"1m\"\nd = [\"x\", 2]\nmeta { k = 1 }\n",
            |r| {
                assert_eq!(r.int("a").unwrap(), Some(3));
                assert_eq!(r.string("b").unwrap().as_deref(), Some("true"));
                assert_eq!(r.duration("c").unwrap(), Some(60_000_000_000));
                assert_eq!(
                    r.strings("d").unwrap(),
                    Some(vec!["x".to_string(), "2".to_string()])
                );
                assert_eq!(
                    r.string_map("meta")
                        .unwrap()
                        .unwrap()
                        .get("k")
                        .map(String::as_str),
                    Some("1")
                );
                assert_eq!(r.int("missing").unwrap(), None);
            },
        );
    }

    #[test]
    fn unknown_names_are_reported_with_a_suggestion() {
        let err = with_reader("count = 1\ncuont = 2\n", |r| {
            r.int("count").unwrap();
            r.ignore(&["other"]);
            r.finish().unwrap_err()
        });
        assert_eq!(
            err.to_string(),
            "t.hcl:2:1: unsupported argument \"cuont\" in test block; did you mean \"count\"?"
        );
    }

    #[test]
    fn dynamic_blocks_expand() {
        with_reader(
            "dynamic \"port\" {\n for_each = [\"a\", \"b\"]\n labels = [port.value]\n content { n = port.key }\n}\n",
            |r| {
                let blocks = r.blocks("port").unwrap();
                assert_eq!(blocks.len(), 2);
                assert_eq!(blocks[1].labels, vec!["b".to_string()]);
                let json = r.block_json(&blocks[1]).unwrap();
                assert_eq!(json.get("n"), Some(&Value::from(1)));
            },
        );
    }

    #[test]
    fn config_blocks_become_lists_of_objects() {
        with_reader(
            "config {\n image = \"redis\"\n port_map { db = 6379 }\n}\n",
            |r| {
                let block = r.block("config").unwrap().unwrap();
                let json = Value::Object(r.block_json(&block).unwrap());
                assert_eq!(
                    json,
                    serde_json::json!({"image": "redis", "port_map": [{"db": 6379}]})
                );
            },
        );
    }
}
