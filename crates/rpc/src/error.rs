//! RPC errors: a stable code plus a message. The HTTP layer maps codes to statuses in one place.

use thiserror::Error;

/// Stable error codes; callers match on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or invalid (HTTP 400).
    BadRequest,
    /// The object does not exist (HTTP 404).
    NotFound,
    /// A check-and-set failed (HTTP 409).
    Conflict,
    /// No leader is known for the region (HTTP 500).
    NoLeader,
    /// No server of the requested region is known (HTTP 500, "No path to region").
    NoRegionPath,
    /// The server is shutting down or overloaded (HTTP 503).
    Unavailable,
    /// Anything else (HTTP 500).
    Internal,
}

/// An error from an RPC call.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct RpcError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// The reason, for people.
    pub message: String,
    /// Where the leader is, when the code is about leadership.
    pub leader_hint: Option<String>,
}

impl RpcError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            leader_hint: None,
        }
    }
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}
