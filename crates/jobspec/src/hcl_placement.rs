//! `constraint`, `affinity` and `spread` blocks, at job, group or task level.

use crate::body::BodyReader;
use crate::error::JobspecError;
use structs::{Affinity, Constraint, Spread, SpreadTarget};

type Res<T> = Result<T, JobspecError>;

/// Shorthand arguments that name the operator and carry the value (`regexp = "^linux$"`).
const SHORTHANDS: &[&str] = &[
    "regexp",
    "version",
    "semver",
    "set_contains",
    "set_contains_any",
    "set_contains_all",
];

/// Every `constraint` block of the body. `operator` defaults to `=`; the shorthands
/// `distinct_hosts = true`, `distinct_property = "${meta.rack}"`, `regexp = "..."`,
/// `version = "..."` and the `set_contains*` forms are accepted as in Nomad.
pub(crate) fn constraints(r: &BodyReader<'_, '_>) -> Res<Vec<Constraint>> {
    let mut out = Vec::new();
    for b in r.blocks("constraint")? {
        let cr = b.reader(r.cx, "constraint");
        let mut c = Constraint {
            l_target: cr.string("attribute")?.unwrap_or_default(),
            operand: cr.string("operator")?.unwrap_or_else(|| "=".into()),
            r_target: cr.string("value")?.unwrap_or_default(),
        };
        for op in SHORTHANDS {
            if let Some(v) = cr.string(op)? {
                c.operand = (*op).to_string();
                c.r_target = v;
            }
        }
        if let Some(v) = cr.boolean("distinct_hosts")? {
            if v {
                c.operand = "distinct_hosts".into();
                c.r_target = "true".into();
            }
        }
        if let Some(prop) = cr.string("distinct_property")? {
            c.operand = "distinct_property".into();
            c.l_target = prop;
        }
        cr.finish()?;
        out.push(c);
    }
    Ok(out)
}

/// Every `affinity` block of the body (weight defaults to 50, operator to `=`).
pub(crate) fn affinities(r: &BodyReader<'_, '_>) -> Res<Vec<Affinity>> {
    let mut out = Vec::new();
    for b in r.blocks("affinity")? {
        let ar = b.reader(r.cx, "affinity");
        let mut a = Affinity {
            l_target: ar.string("attribute")?.unwrap_or_default(),
            operand: ar.string("operator")?.unwrap_or_else(|| "=".into()),
            r_target: ar.string("value")?.unwrap_or_default(),
            weight: ar.int("weight")?.unwrap_or(50),
        };
        for op in SHORTHANDS {
            if let Some(v) = ar.string(op)? {
                a.operand = (*op).to_string();
                a.r_target = v;
            }
        }
        ar.finish()?;
        out.push(a);
    }
    Ok(out)
}

/// Every `spread` block of the body, with its `target "<value>" { percent }` blocks.
pub(crate) fn spreads(r: &BodyReader<'_, '_>) -> Res<Vec<Spread>> {
    let mut out = Vec::new();
    for b in r.blocks("spread")? {
        let sr = b.reader(r.cx, "spread");
        let mut s = Spread {
            attribute: sr.string("attribute")?.unwrap_or_default(),
            weight: sr.int("weight")?.unwrap_or(0),
            spread_target: Vec::new(),
        };
        for t in sr.blocks("target")? {
            let value = t.label(r.cx, "target")?;
            let tr = t.reader(r.cx, format!("target \"{value}\""));
            s.spread_target.push(SpreadTarget {
                value,
                percent: tr.int("percent")?.unwrap_or(0),
            });
            tr.finish()?;
        }
        sr.finish()?;
        out.push(s);
    }
    Ok(out)
}
