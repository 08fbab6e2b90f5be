//! Evaluates HCL expressions and templates to JSON values.
//!
//! Roots other than `var`, `local` and loop variables (`attr.kernel.name`, `node.unique.id`,
//! `meta.rack`, `env["X"]`, `NOMAD_PORT_http`...) are known only on the client at run time. As
//! Nomad's jobspec2 does, they evaluate to the literal text `${<expression>}` so the client can
//! interpolate them later.

use crate::error::SourceMap;
use crate::funcs;
use crate::values::{binary, index, number, to_f64, type_name};
use hcl::edit::expr::{BinaryOperator, Expression, ObjectKey, TraversalOperator, UnaryOperator};
use hcl::edit::template::{Directive, Element, Template};
use hcl::edit::Span;
use serde_json::{Map, Number, Value};
use std::ops::Range;

/// A failed evaluation, with the span of the offending expression.
#[derive(Debug, Clone)]
pub(crate) struct EvalError {
    pub(crate) span: Option<Range<usize>>,
    pub(crate) message: String,
    /// Set when the failure is a reference to a local that is not computed (yet).
    pub(crate) missing_local: Option<String>,
}

impl EvalError {
    pub(crate) fn new(span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Self {
            span,
            message: message.into(),
            missing_local: None,
        }
    }
}

/// Loop and `dynamic` iterator variables, innermost last.
pub(crate) type Scope = Vec<(String, Value)>;

/// Evaluation context: the source (to quote runtime interpolations), `var.*` and `local.*`.
pub(crate) struct Evaluator<'a> {
    pub(crate) map: &'a SourceMap<'a>,
    pub(crate) vars: Map<String, Value>,
    pub(crate) locals: Map<String, Value>,
}

type EvalResult = Result<Value, EvalError>;

impl<'a> Evaluator<'a> {
    pub(crate) fn new(map: &'a SourceMap<'a>) -> Self {
        Self {
            map,
            vars: Map::new(),
            locals: Map::new(),
        }
    }

    /// Evaluates one expression.
    pub(crate) fn eval(&self, expr: &Expression, scope: &Scope) -> EvalResult {
        match expr {
            Expression::Null(_) => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b.value())),
            Expression::Number(n) => {
                let n = n.value();
                if let Some(i) = n.as_i64() {
                    Ok(Value::from(i))
                } else {
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    Number::from_f64(f)
                        .map(Value::Number)
                        .ok_or_else(|| EvalError::new(expr.span(), "number out of range"))
                }
            }
            Expression::String(s) => Ok(Value::String(s.value().clone())),
            Expression::Array(items) => items
                .iter()
                .map(|e| self.eval(e, scope))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Expression::Object(obj) => {
                let mut out = Map::new();
                for (key, value) in obj.iter() {
                    let k = match key {
                        ObjectKey::Ident(ident) => ident.as_str().to_string(),
                        ObjectKey::Expression(e) => match self.eval(e, scope)? {
                            Value::String(s) => s,
                            Value::Number(n) => n.to_string(),
                            Value::Bool(b) => b.to_string(),
                            other => {
                                return Err(EvalError::new(
                                    e.span(),
                                    format!(
                                        "object key must be a string, found {}",
                                        type_name(&other)
                                    ),
                                ))
                            }
                        },
                    };
                    out.insert(k, self.eval(value.expr(), scope)?);
                }
                Ok(Value::Object(out))
            }
            Expression::StringTemplate(t) => self.eval_template(t, scope, true),
            Expression::HeredocTemplate(h) => self.eval_template(&h.template, scope, true),
            Expression::Parenthesis(p) => self.eval(p.inner(), scope),
            Expression::Variable(v) => match self.lookup_root(v.as_str(), scope) {
                Some(value) => Ok(value),
                None => self.root_only(v.as_str(), expr),
            },
            Expression::Traversal(t) => self.eval_traversal(t, expr, scope),
            Expression::FuncCall(call) => self.eval_call(call, expr, scope),
            Expression::Conditional(c) => match self.eval(&c.cond_expr, scope)? {
                Value::Bool(true) => self.eval(&c.true_expr, scope),
                Value::Bool(false) => self.eval(&c.false_expr, scope),
                other => Err(EvalError::new(
                    c.cond_expr.span(),
                    format!("condition must be a bool, found {}", type_name(&other)),
                )),
            },
            Expression::UnaryOp(op) => {
                let v = self.eval(&op.expr, scope)?;
                match op.operator.value() {
                    UnaryOperator::Not => match v {
                        Value::Bool(b) => Ok(Value::Bool(!b)),
                        other => Err(EvalError::new(
                            expr.span(),
                            format!("\"!\" needs a bool, found {}", type_name(&other)),
                        )),
                    },
                    UnaryOperator::Neg => {
                        let n = to_f64(&v).ok_or_else(|| {
                            EvalError::new(
                                expr.span(),
                                format!("\"-\" needs a number, found {}", type_name(&v)),
                            )
                        })?;
                        Ok(number(-n))
                    }
                }
            }
            Expression::BinaryOp(_) => {
                // The parser builds operator chains without precedence; flatten the chain and
                // apply HCL's precedence (left-associative) here.
                let mut operands = Vec::new();
                let mut operators = Vec::new();
                flatten(expr, &mut operands, &mut operators);
                let mut values = Vec::with_capacity(operands.len());
                for operand in operands {
                    values.push(self.eval(operand, scope)?);
                }
                let mut values = values.into_iter();
                let mut stack = vec![values.next().unwrap_or(Value::Null)];
                let mut pending: Vec<BinaryOperator> = Vec::new();
                let reduce = |stack: &mut Vec<Value>,
                              op: BinaryOperator|
                 -> Result<(), EvalError> {
                    let rhs = stack.pop().unwrap_or(Value::Null);
                    let lhs = stack.pop().unwrap_or(Value::Null);
                    stack.push(binary(op, &lhs, &rhs).map_err(|m| EvalError::new(expr.span(), m))?);
                    Ok(())
                };
                for (op, value) in operators.into_iter().zip(values) {
                    while let Some(top) = pending.last().copied() {
                        if top.precedence() < op.precedence() {
                            break;
                        }
                        pending.pop();
                        reduce(&mut stack, top)?;
                    }
                    pending.push(op);
                    stack.push(value);
                }
                while let Some(top) = pending.pop() {
                    reduce(&mut stack, top)?;
                }
                Ok(stack.pop().unwrap_or(Value::Null))
            }
            Expression::ForExpr(f) => {
                let collection = self.eval(&f.intro.collection_expr, scope)?;
                let items: Vec<(Value, Value)> = match collection {
                    Value::Array(a) => a
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::from(i), v))
                        .collect(),
                    Value::Object(o) => o.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
                    other => {
                        return Err(EvalError::new(
                            f.intro.collection_expr.span(),
                            format!("cannot iterate over {}", type_name(&other)),
                        ))
                    }
                };
                let mut list = Vec::new();
                let mut obj = Map::new();
                for (k, v) in items {
                    let mut inner = scope.clone();
                    if let Some(kv) = &f.intro.key_var {
                        inner.push((kv.as_str().to_string(), k));
                    }
                    inner.push((f.intro.value_var.as_str().to_string(), v));
                    if let Some(cond) = &f.cond {
                        match self.eval(&cond.expr, &inner)? {
                            Value::Bool(true) => {}
                            Value::Bool(false) => continue,
                            other => {
                                return Err(EvalError::new(
                                    cond.expr.span(),
                                    format!(
                                        "for condition must be a bool, found {}",
                                        type_name(&other)
                                    ),
                                ))
                            }
                        }
                    }
                    let value = self.eval(&f.value_expr, &inner)?;
                    match &f.key_expr {
                        None => list.push(value),
                        Some(key_expr) => {
                            let key = match self.eval(key_expr, &inner)? {
                                Value::String(s) => s,
                                other => funcs::to_string(&other)
                                    .map_err(|m| EvalError::new(key_expr.span(), m))?,
                            };
                            if f.grouping {
                                let slot =
                                    obj.entry(key).or_insert_with(|| Value::Array(Vec::new()));
                                if let Value::Array(group) = slot {
                                    group.push(value);
                                }
                            } else if obj.insert(key.clone(), value).is_some() {
                                return Err(EvalError::new(
                                    key_expr.span(),
                                    format!("duplicate key {key:?} in for expression (use \"...\" to group)"),
                                ));
                            }
                        }
                    }
                }
                Ok(if f.key_expr.is_some() {
                    Value::Object(obj)
                } else {
                    Value::Array(list)
                })
            }
        }
    }

    /// A loop variable, or `var` / `local` as whole objects.
    fn lookup_root(&self, name: &str, scope: &Scope) -> Option<Value> {
        if let Some((_, v)) = scope.iter().rev().find(|(n, _)| n == name) {
            return Some(v.clone());
        }
        match name {
            "var" => Some(Value::Object(self.vars.clone())),
            "local" => Some(Value::Object(self.locals.clone())),
            _ => None,
        }
    }

    /// A bare unknown root: a runtime interpolation such as `${NOMAD_PORT_http}`.
    fn root_only(&self, _name: &str, expr: &Expression) -> EvalResult {
        Ok(Value::String(self.runtime_text(expr)))
    }

    /// `${<source text>}` for an expression that is evaluated on the client.
    fn runtime_text(&self, expr: &Expression) -> String {
        let text = expr
            .span()
            .and_then(|s| self.map.text(&s))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| expr.to_string().trim().to_string());
        format!("${{{text}}}")
    }

    fn eval_traversal(
        &self,
        t: &hcl::edit::expr::Traversal,
        whole: &Expression,
        scope: &Scope,
    ) -> EvalResult {
        let mut ops = t.operators.iter().map(|o| o.value()).peekable();
        let mut value = match &t.expr {
            Expression::Variable(root) => {
                let name = root.as_str();
                let in_scope = scope.iter().any(|(n, _)| n == name);
                if !in_scope && (name == "var" || name == "local") {
                    let Some(TraversalOperator::GetAttr(attr)) = ops.next() else {
                        return Err(EvalError::new(
                            whole.span(),
                            format!("\"{name}\" must be followed by an attribute name, like {name}.example"),
                        ));
                    };
                    let table = if name == "var" {
                        &self.vars
                    } else {
                        &self.locals
                    };
                    match table.get(attr.as_str()) {
                        Some(v) => v.clone(),
                        None if name == "local" => {
                            return Err(EvalError {
                                span: whole.span(),
                                message: format!("unknown local value local.{}", attr.as_str()),
                                missing_local: Some(attr.as_str().to_string()),
                            })
                        }
                        None => {
                            return Err(EvalError::new(
                                whole.span(),
                                format!(
                                    "unknown variable var.{0}: declare it with a variable \"{0}\" block",
                                    attr.as_str()
                                ),
                            ))
                        }
                    }
                } else {
                    match self.lookup_root(name, scope) {
                        Some(v) => v,
                        None => return Ok(Value::String(self.runtime_text(whole))),
                    }
                }
            }
            other => self.eval(other, scope)?,
        };
        let ops: Vec<&TraversalOperator> = ops.collect();
        self.apply_ops(&mut value, &ops, whole, scope)?;
        Ok(value)
    }

    fn apply_ops(
        &self,
        value: &mut Value,
        ops: &[&TraversalOperator],
        whole: &Expression,
        scope: &Scope,
    ) -> Result<(), EvalError> {
        for (i, op) in ops.iter().enumerate() {
            let next = match op {
                TraversalOperator::GetAttr(name) => match &*value {
                    Value::Object(o) => o.get(name.as_str()).cloned().ok_or_else(|| {
                        EvalError::new(
                            whole.span(),
                            format!("object has no attribute {:?}", name.as_str()),
                        )
                    })?,
                    other => {
                        return Err(EvalError::new(
                            whole.span(),
                            format!(
                                "cannot read attribute {:?} of {}",
                                name.as_str(),
                                type_name(other)
                            ),
                        ))
                    }
                },
                TraversalOperator::Index(idx) => {
                    let key = self.eval(idx, scope)?;
                    index(value, &key).map_err(|m| EvalError::new(whole.span(), m))?
                }
                TraversalOperator::LegacyIndex(n) => index(value, &Value::from(*n.value()))
                    .map_err(|m| EvalError::new(whole.span(), m))?,
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    let items = match std::mem::take(value) {
                        Value::Array(a) => a,
                        Value::Null => Vec::new(),
                        other => vec![other],
                    };
                    let rest = ops.get(i + 1..).unwrap_or_default();
                    let mut out = Vec::with_capacity(items.len());
                    for mut item in items {
                        self.apply_ops(&mut item, rest, whole, scope)?;
                        out.push(item);
                    }
                    *value = Value::Array(out);
                    return Ok(());
                }
            };
            *value = next;
        }
        Ok(())
    }

    fn eval_call(
        &self,
        call: &hcl::edit::expr::FuncCall,
        whole: &Expression,
        scope: &Scope,
    ) -> EvalResult {
        let name = call.name.name.as_str();
        let args: Vec<&Expression> = call.args.iter().collect();
        match name {
            "can" => {
                let [arg] = args.as_slice() else {
                    return Err(EvalError::new(
                        whole.span(),
                        "can() takes exactly one argument",
                    ));
                };
                return Ok(Value::Bool(self.eval(arg, scope).is_ok()));
            }
            "try" => {
                let mut last = None;
                for arg in &args {
                    match self.eval(arg, scope) {
                        Ok(v) => return Ok(v),
                        Err(e) => last = Some(e),
                    }
                }
                return Err(last.unwrap_or_else(|| {
                    EvalError::new(whole.span(), "try() needs at least one argument")
                }));
            }
            _ => {}
        }
        let mut values = Vec::with_capacity(args.len());
        for arg in &args {
            values.push(self.eval(arg, scope)?);
        }
        if call.args.expand_final() {
            match values.pop() {
                Some(Value::Array(tail)) => values.extend(tail),
                Some(other) => {
                    return Err(EvalError::new(
                        whole.span(),
                        format!(
                            "the final argument expanded with \"...\" must be a list, found {}",
                            type_name(&other)
                        ),
                    ))
                }
                None => {}
            }
        }
        funcs::call(name, values)
            .map_err(|m| EvalError::new(whole.span(), format!("{name}(): {m}")))
    }

    /// Renders a template. A template that is one interpolation returns that value unchanged,
    /// as HCL specifies (`"${var.list}"` is a list).
    pub(crate) fn eval_template(
        &self,
        template: &Template,
        scope: &Scope,
        top: bool,
    ) -> EvalResult {
        let elements: Vec<&Element> = template.iter().collect();
        if top {
            if let [Element::Interpolation(interp)] = elements.as_slice() {
                return self.eval(&interp.expr, scope);
            }
        }
        let strips: Vec<(bool, bool)> = elements
            .iter()
            .map(|e| match e {
                Element::Literal(_) => (false, false),
                Element::Interpolation(i) => (i.strip.strip_start(), i.strip.strip_end()),
                Element::Directive(Directive::If(d)) => (
                    d.if_expr.strip.strip_start(),
                    d.endif_expr.strip.strip_end(),
                ),
                Element::Directive(Directive::For(d)) => (
                    d.for_expr.strip.strip_start(),
                    d.endfor_expr.strip.strip_end(),
                ),
            })
            .collect();
        let mut out = String::new();
        for (i, element) in elements.iter().enumerate() {
            match element {
                Element::Literal(text) => {
                    let mut s: &str = text.value();
                    if i > 0 && strips.get(i - 1).is_some_and(|s| s.1) {
                        s = s.trim_start();
                    }
                    if strips.get(i + 1).is_some_and(|s| s.0) {
                        s = s.trim_end();
                    }
                    out.push_str(s);
                }
                Element::Interpolation(interp) => {
                    let v = self.eval(&interp.expr, scope)?;
                    let s =
                        funcs::to_string(&v).map_err(|m| EvalError::new(interp.expr.span(), m))?;
                    out.push_str(&s);
                }
                Element::Directive(Directive::If(d)) => {
                    let branch = match self.eval(&d.if_expr.cond_expr, scope)? {
                        Value::Bool(true) => Some(&d.if_expr.template),
                        Value::Bool(false) => d.else_expr.as_ref().map(|e| &e.template),
                        other => {
                            return Err(EvalError::new(
                                d.if_expr.cond_expr.span(),
                                format!(
                                    "%{{if}} condition must be a bool, found {}",
                                    type_name(&other)
                                ),
                            ))
                        }
                    };
                    if let Some(t) = branch {
                        if let Value::String(s) = self.eval_template(t, scope, false)? {
                            out.push_str(&s);
                        }
                    }
                }
                Element::Directive(Directive::For(d)) => {
                    let f = &d.for_expr;
                    let items: Vec<(Value, Value)> = match self.eval(&f.collection_expr, scope)? {
                        Value::Array(a) => a
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::from(i), v))
                            .collect(),
                        Value::Object(o) => {
                            o.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
                        }
                        other => {
                            return Err(EvalError::new(
                                f.collection_expr.span(),
                                format!("cannot iterate over {}", type_name(&other)),
                            ))
                        }
                    };
                    for (k, v) in items {
                        let mut inner = scope.clone();
                        if let Some(kv) = &f.key_var {
                            inner.push((kv.as_str().to_string(), k));
                        }
                        inner.push((f.value_var.as_str().to_string(), v));
                        if let Value::String(s) = self.eval_template(&f.template, &inner, false)? {
                            out.push_str(&s);
                        }
                    }
                }
            }
        }
        Ok(Value::String(out))
    }
}

/// The operands and operators of a chain of binary operations, in source order.
fn flatten<'e>(
    expr: &'e Expression,
    operands: &mut Vec<&'e Expression>,
    operators: &mut Vec<BinaryOperator>,
) {
    match expr {
        Expression::BinaryOp(op) => {
            flatten(&op.lhs_expr, operands, operators);
            operators.push(*op.operator.value());
            flatten(&op.rhs_expr, operands, operators);
        }
        other => operands.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval_str(src: &str) -> Result<Value, EvalError> {
        let map = SourceMap::new("t.hcl", src);
        let expr: Expression = hcl::edit::parser::parse_expr(src).expect("parses");
        let mut ev = Evaluator::new(&map);
        ev.vars.insert("name".into(), Value::from("web"));
        ev.vars.insert("n".into(), Value::from(3));
        ev.vars.insert("list".into(), serde_json::json!(["a", "b"]));
        ev.locals.insert("tag".into(), Value::from("v2"));
        ev.eval(&expr, &Vec::new())
    }

    #[test]
    fn variables_locals_and_operators() {
        assert_eq!(eval_str("var.name").unwrap(), "web");
        assert_eq!(eval_str("\"img:${local.tag}\"").unwrap(), "img:v2");
        assert_eq!(eval_str("var.n * 2 + 1").unwrap(), 7);
        assert_eq!(eval_str("var.n > 2 ? \"big\" : \"small\"").unwrap(), "big");
        assert_eq!(
            eval_str("\"${var.list}\"").unwrap(),
            serde_json::json!(["a", "b"])
        );
        assert_eq!(eval_str("var.list[1]").unwrap(), "b");
        assert_eq!(
            eval_str("[for s in var.list : upper(s)]").unwrap(),
            serde_json::json!(["A", "B"])
        );
        assert_eq!(
            eval_str("{for i, s in var.list : s => i}").unwrap(),
            serde_json::json!({"a": 0, "b": 1})
        );
        assert_eq!(eval_str("!(1 == 2) && true").unwrap(), true);
        assert_eq!(eval_str("1 + 2 * 3 - 4 / 2").unwrap(), 5);
        assert_eq!(eval_str("10 - 3 - 2").unwrap(), 5);
        assert_eq!(eval_str("(1 + 2) * 3").unwrap(), 9);
        assert_eq!(eval_str("!false && false").unwrap(), false);
        assert_eq!(eval_str("1 < 2 == true || false").unwrap(), true);
    }

    #[test]
    fn runtime_roots_stay_as_text() {
        assert_eq!(
            eval_str("\"${attr.kernel.name}\"").unwrap(),
            "${attr.kernel.name}"
        );
        assert_eq!(
            eval_str("\"port ${NOMAD_PORT_http}!\"").unwrap(),
            "port ${NOMAD_PORT_http}!"
        );
        assert_eq!(
            eval_str("\"${env[\"HOME\"]}/x\"").unwrap(),
            "${env[\"HOME\"]}/x"
        );
        assert_eq!(
            eval_str("\"$${var.name} ${var.name}\"").unwrap(),
            "${var.name} web"
        );
        assert_eq!(eval_str("node.unique.name").unwrap(), "${node.unique.name}");
    }

    #[test]
    fn template_directives() {
        assert_eq!(
            eval_str("\"%{ for s in var.list }${s},%{ endfor }\"").unwrap(),
            "a,b,"
        );
        assert_eq!(
            eval_str("\"%{ if var.n > 1 }many%{ else }one%{ endif }\"").unwrap(),
            "many"
        );
    }

    #[test]
    fn errors_carry_spans() {
        let err = eval_str("\"x ${var.missing}\"").unwrap_err();
        assert!(
            err.message.contains("unknown variable var.missing"),
            "{}",
            err.message
        );
        assert_eq!(err.span, Some(5..16));
        let err = eval_str("local.other").unwrap_err();
        assert_eq!(err.missing_local.as_deref(), Some("other"));
        assert!(eval_str("1 / 0").is_err());
        assert!(eval_str("\"${var.list}x\"").is_err());
    }
}
