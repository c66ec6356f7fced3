//! [`DirectoryError`], the one error type of the directory, and its mapping to gRPC status
//! codes (both ways: the server maps errors to statuses, the client maps statuses back).

use thiserror::Error;
use tonic::{Code, Status};

/// A failure of a directory operation.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DirectoryError {
    /// The request is malformed (a name too long, an id with `=`, an IP that is not one...).
    /// Retrying the same request fails the same way.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The backend (Redis) or the directory service cannot be reached; retrying later may work.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The backend returned data this directory cannot read, or another unexpected failure.
    #[error("directory internal error: {0}")]
    Internal(String),
    /// The settings cannot work (TLS files missing or unreadable, a public address without
    /// TLS). Never sent over the wire.
    #[error("directory settings: {0}")]
    Config(String),
}

impl DirectoryError {
    /// [`DirectoryError::Invalid`] with `msg`.
    pub fn invalid(msg: impl Into<String>) -> Self {
        DirectoryError::Invalid(msg.into())
    }
}

impl From<DirectoryError> for Status {
    fn from(e: DirectoryError) -> Status {
        match e {
            DirectoryError::Invalid(m) => Status::invalid_argument(m),
            DirectoryError::Unavailable(m) => Status::unavailable(m),
            DirectoryError::Internal(m) | DirectoryError::Config(m) => Status::internal(m),
        }
    }
}

impl From<Status> for DirectoryError {
    fn from(s: Status) -> DirectoryError {
        let msg = s.message().to_string();
        match s.code() {
            Code::InvalidArgument => DirectoryError::Invalid(msg),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                DirectoryError::Unavailable(format!("{:?}: {msg}", s.code()))
            }
            c => DirectoryError::Internal(format!("{c:?}: {msg}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_roundtrip() {
        for e in [
            DirectoryError::Invalid("x".into()),
            DirectoryError::Unavailable("y".into()),
            DirectoryError::Internal("z".into()),
        ] {
            let s: Status = e.clone().into();
            let back: DirectoryError = s.into();
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(&e),
                "{e:?} -> {back:?}"
            );
        }
        assert_eq!(
            Status::from(DirectoryError::Invalid("bad id".into())).code(),
            Code::InvalidArgument
        );
    }
}
