//! [`S3Error`]: what can go wrong building or using the S3 collector, and how a caller should
//! react ([`S3Error::kind`], mapped onto [`CollectErrorKind`]).
//!
//! Classification of S3 responses ([`classify`]):
//! - throttling (429, `SlowDown`, `Throttling*`), 5xx, `RequestTimeout`, timeouts and network
//!   failures → [`CollectErrorKind::Transient`];
//! - 412 `PreconditionFailed` (the object changed between `list` and `fetch`) → `Transient`: the
//!   next cycle lists the new ETag and fetches it;
//! - 404 `NoSuchKey` / `NoSuchVersion` on an object → [`CollectErrorKind::NotFound`];
//! - 403 (`AccessDenied`, bad keys, bad signature), 404 `NoSuchBucket`, a 404 on a bucket-level
//!   call, 301 (wrong region) and every other 4xx → [`CollectErrorKind::Permanent`];
//! - no credentials anywhere in the chain, or a misconfigured provider → `Permanent`; a credential
//!   provider that timed out or failed (IMDS, STS) → `Transient`.
//!
//! Messages name the operation, the bucket (and key) and the service's code, HTTP status and
//! message. They never contain credentials: the SDK's errors do not carry them, and this crate
//! never formats its configuration's endpoint URL (which could hold userinfo).

use aims_collect::{CollectError, CollectErrorKind};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// An error of the S3 source.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The configuration cannot work (validation failed, no region can be found…).
    #[error("s3 source {id:?}: {reason}")]
    Config {
        /// The source id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// An S3 request failed.
    #[error("s3 {op} {target}: {detail}")]
    Api {
        /// The S3 operation, e.g. `ListObjectsV2`.
        op: &'static str,
        /// `s3://bucket/key` (or `s3://bucket/prefix` for listings).
        target: String,
        /// The service's error code (`NoSuchBucket`, `SlowDown`…), when there was a response.
        code: Option<String>,
        /// The HTTP status, when there was a response.
        status: Option<u16>,
        /// Human-readable detail (code, status, the service's message or the transport error).
        detail: String,
        /// Retry class.
        kind: CollectErrorKind,
    },
    /// The service answered with something this collector cannot use (e.g. a truncated listing
    /// without a continuation token).
    #[error("s3 {op} {target}: {reason}")]
    Protocol {
        /// The S3 operation.
        op: &'static str,
        /// The bucket/prefix or object.
        target: String,
        /// What was wrong.
        reason: String,
    },
}

impl S3Error {
    /// Whether retrying can help (see the module docs for the mapping).
    pub fn kind(&self) -> CollectErrorKind {
        match self {
            Self::Config { .. } => CollectErrorKind::Permanent,
            Self::Api { kind, .. } => *kind,
            Self::Protocol { .. } => CollectErrorKind::Transient,
        }
    }

    /// The service's error code, when the error came from an S3 response.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status, when the error came from an S3 response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => *status,
            _ => None,
        }
    }

    /// Builds an [`S3Error::Api`] from an SDK error. `object_level` says whether the request
    /// addressed an object (a bare 404 then means the object is missing) or the bucket (a 404
    /// means the bucket is missing, which is a configuration problem).
    pub(crate) fn from_sdk<E>(
        op: &'static str,
        target: String,
        object_level: bool,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let (code, message) = match err.as_service_error() {
            Some(e) => (e.code().map(str::to_owned), e.message().map(str::to_owned)),
            None => (None, None),
        };
        let kind = match &err {
            SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
                classify(code.as_deref(), status, object_level)
            }
            SdkError::TimeoutError(_) => CollectErrorKind::Transient,
            SdkError::DispatchFailure(d) if d.is_user() => CollectErrorKind::Permanent,
            SdkError::DispatchFailure(_) => match credentials_error(&err) {
                // No provider in the chain had credentials, or one is misconfigured.
                Some(
                    CredentialsError::CredentialsNotLoaded(_)
                    | CredentialsError::InvalidConfiguration(_),
                ) => CollectErrorKind::Permanent,
                // Timeouts and provider failures (IMDS, STS 5xx…), anything else.
                _ => CollectErrorKind::Transient,
            },
            // The request could not even be built: missing region or credentials, bad input.
            SdkError::ConstructionFailure(_) => CollectErrorKind::Permanent,
            _ => CollectErrorKind::Transient,
        };
        let detail = match (&err, code.as_deref(), status) {
            (SdkError::ServiceError(_), c, s) => {
                let mut d = match (c, s) {
                    (Some(c), Some(s)) => format!("{c} (HTTP {s})"),
                    (Some(c), None) => c.to_owned(),
                    (None, Some(s)) => format!("HTTP {s}"),
                    (None, None) => "service error".to_owned(),
                };
                match message.as_deref() {
                    Some(m) if !m.is_empty() => {
                        d.push_str(": ");
                        d.push_str(m);
                    }
                    _ => {
                        if let Some(hint) = hint(c, s, object_level) {
                            d.push_str(": ");
                            d.push_str(hint);
                        }
                    }
                }
                d
            }
            _ => DisplayErrorContext(&err).to_string(),
        };
        Self::Api {
            op,
            target,
            code,
            status,
            detail,
            kind,
        }
    }
}

/// The credential provider's error in `err`'s source chain, if resolving credentials failed.
fn credentials_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a CredentialsError> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            return Some(c);
        }
        cur = e.source();
    }
    None
}

/// A readable explanation for responses that carry no message (HEAD requests have no body).
fn hint(code: Option<&str>, status: Option<u16>, object_level: bool) -> Option<&'static str> {
    match (code, status) {
        (Some("NoSuchBucket"), _) => Some("the bucket does not exist"),
        (_, Some(404)) if object_level => Some("the object does not exist"),
        (_, Some(404)) => Some("the bucket does not exist"),
        (_, Some(403)) => Some("access denied (check credentials and the bucket policy)"),
        (_, Some(301)) => Some("the bucket is in another region (set `region`)"),
        (_, Some(412)) => Some("the object changed since it was listed"),
        _ => None,
    }
}

/// Maps an S3 error code and HTTP status onto a retry class (see the module docs).
pub fn classify(code: Option<&str>, status: Option<u16>, object_level: bool) -> CollectErrorKind {
    use CollectErrorKind::{NotFound, Permanent, Transient};
    match code {
        Some("NoSuchBucket") => return Permanent,
        Some("NoSuchKey" | "NoSuchVersion") => return NotFound,
        Some(
            "SlowDown"
            | "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "TransactionInProgressException"
            | "RequestLimitExceeded"
            | "BandwidthLimitExceeded"
            | "RequestTimeout"
            | "RequestTimeoutException"
            | "PriorRequestNotComplete"
            | "InternalError"
            | "ServiceUnavailable"
            | "OperationAborted"
            | "PreconditionFailed",
        ) => return Transient,
        Some(
            "AccessDenied"
            | "AllAccessDisabled"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken"
            | "InvalidBucketName"
            | "PermanentRedirect"
            | "AuthorizationHeaderMalformed",
        ) => return Permanent,
        _ => {}
    }
    match status {
        Some(404) if object_level => NotFound,
        Some(408 | 412 | 429) => Transient,
        Some(s) if s >= 500 => Transient,
        Some(s) if s >= 300 => Permanent,
        // A 2xx that still failed to parse, or no response at all.
        _ => Transient,
    }
}

impl From<S3Error> for CollectError {
    fn from(e: S3Error) -> Self {
        CollectError::source(e.kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CollectErrorKind::{NotFound, Permanent, Transient};

    #[test]
    fn classification() {
        let cases = [
            (Some("NoSuchBucket"), Some(404), false, Permanent),
            (Some("NoSuchBucket"), Some(404), true, Permanent),
            (Some("NoSuchKey"), Some(404), true, NotFound),
            (None, Some(404), true, NotFound),
            (Some("NotFound"), Some(404), false, Permanent),
            (Some("AccessDenied"), Some(403), false, Permanent),
            (None, Some(403), true, Permanent),
            (Some("SlowDown"), Some(503), false, Transient),
            (None, Some(503), false, Transient),
            (Some("InternalError"), Some(500), true, Transient),
            (None, Some(429), false, Transient),
            (Some("PreconditionFailed"), Some(412), true, Transient),
            (Some("PermanentRedirect"), Some(301), false, Permanent),
            (Some("InvalidArgument"), Some(400), false, Permanent),
            (None, None, false, Transient),
        ];
        for (code, status, obj, want) in cases {
            assert_eq!(
                classify(code, status, obj),
                want,
                "{code:?} {status:?} {obj}"
            );
        }
    }

    #[test]
    fn into_collect_error_keeps_kind_and_message() {
        let e = S3Error::Api {
            op: "ListObjectsV2",
            target: "s3://nope/x/".into(),
            code: Some("NoSuchBucket".into()),
            status: Some(404),
            detail: "NoSuchBucket (HTTP 404): The specified bucket does not exist".into(),
            kind: Permanent,
        };
        let c: CollectError = e.into();
        assert_eq!(c.kind(), Permanent);
        assert!(c.to_string().contains("s3://nope/x/"), "{c}");
        assert!(c.to_string().contains("NoSuchBucket"), "{c}");
        let cfg = S3Error::Config {
            id: "b".into(),
            reason: "no region".into(),
        };
        assert_eq!(CollectError::from(cfg).kind(), Permanent);
    }
}
