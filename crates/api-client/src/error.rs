//! The error every call returns.

use thiserror::Error;

/// Why a call failed.
#[derive(Debug, Error)]
pub enum ApiError {
    /// The agent could not be reached.
    #[error("cannot reach the agent at {address}: {reason} (is the agent running?)")]
    Connect {
        /// The agent address tried.
        address: String,
        /// The transport error.
        reason: String,
    },
    /// The agent answered with an error status.
    #[error("Unexpected response code: {status} ({body})")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The plain-text reason.
        body: String,
    },
    /// The response body was not the JSON expected (or a request body could not be encoded).
    #[error("Failed to decode response from {path}: {reason}")]
    Decode {
        /// The API path.
        path: String,
        /// The decode error.
        reason: String,
    },
}

impl ApiError {
    /// The HTTP status, when the agent answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's plain-text reason for an error status; the whole message otherwise.
    pub fn reason(&self) -> String {
        match self {
            ApiError::Status { body, .. } => body.clone(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ApiError;

    #[test]
    fn status_and_reason() {
        let e = ApiError::Status {
            status: 409,
            body: "conflict".into(),
        };
        assert_eq!(e.status(), Some(409));
        assert_eq!(e.reason(), "conflict");
        assert_eq!(e.to_string(), "Unexpected response code: 409 (conflict)");
        let e = ApiError::Connect {
            address: "http://127.0.0.1:1".into(),
            reason: "refused".into(),
        };
        assert_eq!(e.status(), None);
        assert!(e.reason().contains("is the agent running?"));
    }
}
