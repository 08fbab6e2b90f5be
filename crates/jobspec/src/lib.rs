//! Job files to `structs::Job`: Nomad's HCL2 job specification (with variables, locals,
//! functions, `dynamic` blocks and heredocs) and Nomad's JSON job format.
//!
//! The returned job is canonicalized (`structs::canonicalize`) but not validated; callers run
//! `structs::validate::validate`. Errors name the file, line and column.
//!
//! Owns: parsing and decoding job files. Must not: talk to servers, read the environment (the
//! caller passes `NOMAD_VAR_*` in [`ParseOptions::env_vars`]) or touch the disk except to read
//! the `-var-file`s it is given. Runtime interpolations (`${attr.*}`, `${node.*}`, `${meta.*}`,
//! `${env["X"]}`, `${NOMAD_*}`) are kept as text for the client, as Nomad's jobspec2 does.
//!
//! Layout: `body` reads a block body strictly (unknown arguments are errors), `eval` and
//! `funcs` evaluate expressions, `variables` resolves `variable`/`locals`, `hcl_job`,
//! `hcl_task`, `hcl_service` and `hcl_placement` decode the blocks, `json` the JSON form.

mod body;
mod error;
mod eval;
mod funcs;
mod hcl_job;
mod hcl_placement;
mod hcl_service;
mod hcl_task;
mod json;
mod values;
mod variables;

pub use error::JobspecError;

use body::Cx;
use error::SourceMap;
use eval::Evaluator;
use std::collections::BTreeMap;
use std::path::PathBuf;
use structs::Job;

/// Inputs to a parse besides the file itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// `-var name=value` flags (highest precedence).
    pub vars: BTreeMap<String, String>,
    /// `-var-file` paths, HCL (`name = value`) or JSON (`{"name": value}`), applied in order.
    pub var_files: Vec<PathBuf>,
    /// Environment variables; entries named `NOMAD_VAR_<name>` set variable `<name>`, others
    /// are ignored. The crate never reads the process environment itself.
    pub env_vars: BTreeMap<String, String>,
    /// Nomad's `-hcl2-strict`: values for undeclared variables (from `-var` or a var file)
    /// are errors instead of being ignored.
    pub strict: bool,
}

/// Parses a job file, HCL or JSON (JSON when the text starts with `{`).
pub fn parse(source: &str, filename: &str, opts: &ParseOptions) -> Result<Job, JobspecError> {
    if source.trim_start().starts_with('{') {
        parse_json(source, filename, opts)
    } else {
        parse_hcl(source, filename, opts)
    }
}

/// Parses an HCL2 job file.
pub fn parse_hcl(source: &str, filename: &str, opts: &ParseOptions) -> Result<Job, JobspecError> {
    let body = hcl_syntax(filename, source)?;
    let map = SourceMap::new(filename, source);
    let mut cx = Cx {
        map: &map,
        ev: Evaluator::new(&map),
    };
    variables::resolve(&mut cx, &body, opts)?;
    let mut job = hcl_job::decode_file(&cx, &body)?;
    structs::canonicalize::canonicalize(&mut job);
    Ok(job)
}

/// Parses a JSON job: `{"Job": {...}}` (the API's request body) or the bare job object.
/// Variables do not apply to JSON jobs; `_opts` is accepted for symmetry.
pub fn parse_json(source: &str, filename: &str, _opts: &ParseOptions) -> Result<Job, JobspecError> {
    let mut job = json::decode(source, filename)?;
    structs::canonicalize::canonicalize(&mut job);
    Ok(job)
}

/// Parses HCL syntax, mapping syntax errors to `file:line:column: message`.
pub(crate) fn hcl_syntax(
    filename: &str,
    source: &str,
) -> Result<hcl::edit::structure::Body, JobspecError> {
    if source.trim().is_empty() {
        return Ok(hcl::edit::structure::Body::new());
    }
    hcl::edit::parser::parse_body(source).map_err(|e| {
        let line_text = e.line().trim();
        let message = if e.location().offset() >= source.trim_end().len() {
            format!(
                "unexpected end of file, a block is not closed; {}",
                e.message()
            )
        } else {
            format!("{} (in `{line_text}`)", e.message())
        };
        JobspecError::Syntax {
            file: filename.to_string(),
            line: e.location().line(),
            column: e.location().column(),
            message,
        }
    })
}
