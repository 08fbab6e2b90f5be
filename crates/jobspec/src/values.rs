//! Operations on evaluated values: types, numbers, indexing and binary operators.

use crate::funcs;
use hcl::edit::expr::BinaryOperator;
use serde_json::{Number, Value};

/// The HCL name of a value's type, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// A number as f64, converting numeric strings as HCL does.
pub(crate) fn to_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON number: integral values become integers.
pub(crate) fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

pub(crate) fn index(value: &Value, key: &Value) -> Result<Value, String> {
    match value {
        Value::Array(a) => {
            let i = to_f64(key)
                .ok_or_else(|| format!("list index must be a number, found {}", type_name(key)))?;
            if i < 0.0 || i.fract() != 0.0 {
                return Err(format!("invalid list index {i}"));
            }
            a.get(i as usize)
                .cloned()
                .ok_or_else(|| format!("index {i} out of range for a list of {} elements", a.len()))
        }
        Value::Object(o) => {
            let k = funcs::to_string(key)?;
            o.get(&k)
                .cloned()
                .ok_or_else(|| format!("object has no key {k:?}"))
        }
        other => Err(format!("cannot index into {}", type_name(other))),
    }
}

pub(crate) fn binary(op: BinaryOperator, lhs: &Value, rhs: &Value) -> Result<Value, String> {
    use BinaryOperator as B;
    let nums = || -> Result<(f64, f64), String> {
        match (to_f64(lhs), to_f64(rhs)) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(format!(
                "arithmetic needs numbers, found {} and {}",
                type_name(lhs),
                type_name(rhs)
            )),
        }
    };
    let bools = || -> Result<(bool, bool), String> {
        match (lhs, rhs) {
            (Value::Bool(a), Value::Bool(b)) => Ok((*a, *b)),
            _ => Err(format!(
                "logic needs bools, found {} and {}",
                type_name(lhs),
                type_name(rhs)
            )),
        }
    };
    Ok(match op {
        B::Eq => Value::Bool(values_equal(lhs, rhs)),
        B::NotEq => Value::Bool(!values_equal(lhs, rhs)),
        B::Less => nums().map(|(a, b)| Value::Bool(a < b))?,
        B::LessEq => nums().map(|(a, b)| Value::Bool(a <= b))?,
        B::Greater => nums().map(|(a, b)| Value::Bool(a > b))?,
        B::GreaterEq => nums().map(|(a, b)| Value::Bool(a >= b))?,
        B::Plus => nums().map(|(a, b)| number(a + b))?,
        B::Minus => nums().map(|(a, b)| number(a - b))?,
        B::Mul => nums().map(|(a, b)| number(a * b))?,
        B::Div => {
            let (a, b) = nums()?;
            if b == 0.0 {
                return Err("division by zero".into());
            }
            number(a / b)
        }
        B::Mod => {
            let (a, b) = nums()?;
            if b == 0.0 {
                return Err("modulo by zero".into());
            }
            number(a % b)
        }
        B::And => bools().map(|(a, b)| Value::Bool(a && b))?,
        B::Or => bools().map(|(a, b)| Value::Bool(a || b))?,
    })
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binary_operators() {
        assert_eq!(
            binary(BinaryOperator::Plus, &json!(1), &json!("2")).unwrap(),
            3
        );
        assert_eq!(
            binary(BinaryOperator::Div, &json!(7), &json!(2)).unwrap(),
            3.5
        );
        assert_eq!(
            binary(BinaryOperator::Eq, &json!(1), &json!(1.0)).unwrap(),
            true
        );
        assert!(binary(BinaryOperator::Mod, &json!(1), &json!(0)).is_err());
        assert!(binary(BinaryOperator::And, &json!(1), &json!(true)).is_err());
    }

    #[test]
    fn indexing() {
        assert_eq!(index(&json!(["a", "b"]), &json!(1)).unwrap(), "b");
        assert_eq!(index(&json!({"k": 1}), &json!("k")).unwrap(), 1);
        assert!(index(&json!(["a"]), &json!(5)).is_err());
        assert!(index(&json!(["a"]), &json!(-1)).is_err());
        assert!(index(&json!("s"), &json!(0)).is_err());
    }
}
