//! The parser's error type and the mapping from byte offsets to `line:column`.

use std::ops::Range;
use thiserror::Error;

/// Why a job file could not be turned into a job. Every variant's message starts with
/// `file:line:column:` (or `file:` when no position is known) so editors can jump to it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JobspecError {
    /// The text is not valid HCL or JSON syntax.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file name given to the parser.
        file: String,
        /// One-based line.
        line: usize,
        /// One-based column (in characters).
        column: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// The syntax is fine but the content is not a job: an unknown block or argument, a wrong
    /// type, an unknown variable, a failed variable validation...
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The file name given to the parser.
        file: String,
        /// One-based line.
        line: usize,
        /// One-based column (in characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A problem that belongs to no position in the job file (a missing `job` block, an
    /// unreadable `-var-file`, a required variable without a value).
    #[error("{file}: {message}")]
    General {
        /// The file the problem is about.
        file: String,
        /// What is wrong.
        message: String,
    },
}

impl JobspecError {
    /// The one-based `(line, column)` of the problem, when it has one.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            JobspecError::Syntax { line, column, .. }
            | JobspecError::Invalid { line, column, .. } => Some((*line, *column)),
            JobspecError::General { .. } => None,
        }
    }
}

/// Maps byte offsets of one source text to one-based lines and columns.
#[derive(Debug, Clone)]
pub(crate) struct SourceMap<'a> {
    pub(crate) file: &'a str,
    pub(crate) src: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    pub(crate) fn new(file: &'a str, src: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            file,
            src,
            line_starts,
        }
    }

    /// One-based line and column (counted in characters) of a byte offset.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line_idx).copied().unwrap_or(0);
        let column = self
            .src
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (line_idx + 1, column)
    }

    /// The source text of a span, when it is valid.
    pub(crate) fn text(&self, span: &Range<usize>) -> Option<&'a str> {
        self.src.get(span.clone())
    }

    /// An `Invalid` error at the start of `span`, or at the start of the file without one.
    pub(crate) fn invalid(
        &self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> JobspecError {
        let (line, column) = span.map_or((1, 1), |s| self.line_col(s.start));
        JobspecError::Invalid {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let map = SourceMap::new("f.hcl", "ab\ncdé\n\nx");
        assert_eq!(map.line_col(0), (1, 1));
        assert_eq!(map.line_col(1), (1, 2));
        assert_eq!(map.line_col(3), (2, 1));
        // `é` is two bytes but one column.
        assert_eq!(map.line_col(7), (2, 4));
        assert_eq!(map.line_col(9), (4, 1));
        assert_eq!(map.line_col(1000), (4, 2));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let map = SourceMap::new("job.hcl", "job \"x\" {\n  county = 1\n}\n");
        let err = map.invalid(Some(12..18), "unsupported argument \"county\"");
        assert_eq!(
            err.to_string(),
            "job.hcl:2:3: unsupported argument \"county\""
        );
        assert_eq!(err.position(), Some((2, 3)));
    }
}
