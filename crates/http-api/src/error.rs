//! The API's error type and the one mapping from `rpc::ErrorCode` to HTTP status. Errors are
//! answered as plain-text bodies, as Nomad does.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rpc::{ErrorCode, RpcError};
use thiserror::Error;

/// Why a request failed.
#[derive(Debug, Error)]
pub(crate) enum ApiError {
    /// The servers (or the client) answered with an error.
    #[error("{0}")]
    Rpc(#[from] RpcError),
    /// The request is malformed: bad JSON, bad query parameter, invalid job (400).
    #[error("{0}")]
    BadRequest(String),
    /// The object does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// Reading local files (logs) failed (500).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with this message.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// The HTTP status this error is answered with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Rpc(e) => status_for(e.code),
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The HTTP status of each RPC error code; the only place that decides it.
pub(crate) fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::NoLeader | ErrorCode::NoRegionPath | ErrorCode::Internal => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// An allocation the local client does not have (Nomad's wording).
pub(crate) fn unknown_alloc(alloc_id: &str) -> ApiError {
    ApiError::NotFound(format!("Unknown allocation \"{alloc_id}\""))
}

/// Replaces the message of a not-found RPC error with Nomad's wording for that object
/// (`job not found`), leaving every other error as it is.
pub(crate) fn not_found_as(message: &'static str) -> impl FnOnce(RpcError) -> ApiError {
    move |e| match e.code {
        ErrorCode::NotFound => ApiError::NotFound(message.to_string()),
        _ => ApiError::Rpc(e),
    }
}

/// Formats several problems as Nomad (go-multierror) does:
/// `2 errors occurred:\n\t* a\n\t* b\n\n`.
pub(crate) fn multi_error(problems: &[String]) -> String {
    let points: Vec<String> = problems.iter().map(|p| format!("* {p}")).collect();
    match problems.len() {
        1 => format!("1 error occurred:\n\t{}\n\n", points.join("")),
        n => format!("{n} errors occurred:\n\t{}\n\n", points.join("\n\t")),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(%status, error = %self, "request failed");
        } else {
            tracing::debug!(%status, error = %self, "request rejected");
        }
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.to_string(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_status() {
        assert_eq!(status_for(ErrorCode::BadRequest), StatusCode::BAD_REQUEST);
        assert_eq!(status_for(ErrorCode::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status_for(ErrorCode::Conflict), StatusCode::CONFLICT);
        assert_eq!(
            status_for(ErrorCode::NoLeader),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status_for(ErrorCode::NoRegionPath),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status_for(ErrorCode::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status_for(ErrorCode::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn multi_error_matches_go_multierror() {
        assert_eq!(multi_error(&["a".into()]), "1 error occurred:\n\t* a\n\n");
        assert_eq!(
            multi_error(&["a".into(), "b".into()]),
            "2 errors occurred:\n\t* a\n\t* b\n\n"
        );
    }

    #[test]
    fn not_found_gets_nomads_wording_and_others_pass_through() {
        let e = not_found_as("job not found")(RpcError::not_found("no job \"x\""));
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert_eq!(e.to_string(), "job not found");
        let e = not_found_as("job not found")(RpcError::conflict("index mismatch"));
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(e.to_string(), "index mismatch");
    }
}
