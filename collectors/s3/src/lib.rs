//! aims-collect-s3: the `s3` source (DESIGN §3a) over AWS S3 and S3-compatible stores.
//!
//! [`build`] loads the AWS configuration (region from the source or the SDK chain; credentials
//! from the standard chain: environment, profiles, web identity for Kubernetes IRSA, ECS, IMDS)
//! and returns an [`S3Collector`], which implements [`aims_collect::Collector`]:
//! - `list`: `ListObjectsV2` (or `ListObjectVersions` with `versions: true`), paged; cheap
//!   metadata only, so an unchanged prefix costs list requests and no download;
//! - `fetch`: `GetObject` with `If-Match` on the listed ETag, streamed, never buffered;
//! - `check`: `HeadBucket`.
//!
//! Invariants: locators (`s3://bucket/key`) are stable across object versions; version tokens
//! (ETag, or `etag@version-id`) change whenever the bytes do; errors carry a retry class
//! ([`S3Error::kind`]) and never credentials. The AWS SDK stays in this crate; other crates see it
//! only through [`aws_config`] / [`aws_sdk_s3`] re-exported here for callers that build their own
//! [`aws_config::SdkConfig`] (e.g. static test credentials) for [`S3Collector::new`].
//!
//! Feature `testkit`: [`testkit::Moto`], a real moto S3 server started on a free port, for this
//! crate's tests and bench and the end-to-end suite.

pub mod collector;
pub mod error;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use aws_config;
pub use aws_sdk_s3;

pub use collector::{
    BODY_IDLE_TIMEOUT, BODY_TOTAL_TIMEOUT, DEFAULT_MAX_PAGES, DEFAULT_PAGE_SIZE, FALLBACK_REGION,
    RequestCounts, S3Collector, build,
};
pub use error::S3Error;
