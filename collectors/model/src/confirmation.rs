//! Confirmations: an agent's signed-into-the-ledger statement "at time T, source S still lists
//! these artifacts with these SHA-256s" (DESIGN §12.1).
//!
//! The engine ships a record only when content changes, so without confirmations the server
//! cannot tell an unchanged file the agent still sees from one nobody has looked at for months.
//! A confirmation costs **no content download** (it is built from the source's listing and the
//! cursor's digests) and **one ledger entry** per source, however many artifacts it covers:
//!
//! - the *listing* is the canonical (RFC 8785) JSON document
//!   `{"artifacts":[{"locator","sha256"}…],"v":1}` with the artifacts sorted by locator, unique;
//! - the [`Confirmation`] (what the ledger entry holds) names the agent, the source, the time,
//!   the number of artifacts and the SHA-256 of the listing bytes ([`Listing::digest`]).
//!
//! The server keeps the listing bytes by their digest and puts them in export bundles, so an
//! auditor can check offline that artifact X was listed with content Y at time T: the listing
//! hashes to the digest in a ledger entry that the signed tree includes.

use serde::{Deserialize, Serialize};

use crate::record::{ContentHash, RecordError, SourceRef, validate_ident, validate_text};
use crate::time::Timestamp;

/// The confirmation format version this crate writes and accepts.
pub const CONFIRMATION_VERSION: u32 = 1;
/// Most artifacts one confirmation may list.
pub const MAX_CONFIRMED_ARTIFACTS: usize = 1_000_000;

/// One artifact a listing still shows, with the digest of the content it has (unchanged since
/// the record that first carried it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedArtifact {
    /// The artifact's locator (as in its evidence record).
    pub locator: String,
    /// SHA-256 of its content.
    pub sha256: ContentHash,
}

/// The canonical listing document of one confirmation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    /// Format version, [`CONFIRMATION_VERSION`].
    pub v: u32,
    /// Sorted by locator, unique.
    pub artifacts: Vec<ListedArtifact>,
}

impl Listing {
    /// A listing of `artifacts`, sorted and de-duplicated by locator (the first of two entries
    /// with one locator wins).
    pub fn new(mut artifacts: Vec<ListedArtifact>) -> Self {
        artifacts.sort_by(|a, b| a.locator.cmp(&b.locator));
        artifacts.dedup_by(|a, b| a.locator == b.locator);
        Self {
            v: CONFIRMATION_VERSION,
            artifacts,
        }
    }

    /// Parses listing bytes and checks they are exactly the canonical form of a valid listing
    /// (so one digest names one listing).
    pub fn parse_canonical(bytes: &[u8]) -> Result<Self, RecordError> {
        let listing: Listing = serde_json::from_slice(bytes)
            .map_err(|e| invalid("listing", format!("not a listing: {e}")))?;
        listing.validate()?;
        if listing.canonical_bytes()? != bytes {
            return Err(invalid("listing", "not in canonical form"));
        }
        Ok(listing)
    }

    /// Version, sort order, uniqueness and locator rules.
    pub fn validate(&self) -> Result<(), RecordError> {
        if self.v != CONFIRMATION_VERSION {
            return Err(invalid(
                "listing.v",
                format!("unsupported version {}", self.v),
            ));
        }
        if self.artifacts.len() > MAX_CONFIRMED_ARTIFACTS {
            return Err(invalid(
                "artifacts",
                format!("more than {MAX_CONFIRMED_ARTIFACTS} artifacts"),
            ));
        }
        for (i, a) in self.artifacts.iter().enumerate() {
            validate_text("artifacts.locator", &a.locator, 2048)?;
            if i > 0 && self.artifacts[i - 1].locator >= a.locator {
                return Err(invalid(
                    "artifacts",
                    format!("artifacts[{i}]: locators must be sorted and unique"),
                ));
            }
        }
        Ok(())
    }

    /// RFC 8785 canonical bytes.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, RecordError> {
        serde_json_canonicalizer::to_vec(self).map_err(|e| RecordError::Canonical(e.to_string()))
    }

    /// SHA-256 of [`Self::canonical_bytes`].
    pub fn digest(&self) -> Result<ContentHash, RecordError> {
        Ok(ContentHash::of(&self.canonical_bytes()?))
    }
}

/// What the ledger records of a confirmation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    /// Format version, [`CONFIRMATION_VERSION`].
    pub v: u32,
    /// The agent that listed the source (as in its records).
    pub agent: String,
    /// The source that was listed.
    pub source: SourceRef,
    /// When the listing was taken.
    pub observed_at: Timestamp,
    /// Number of artifacts in the listing.
    pub count: u64,
    /// SHA-256 of the canonical listing bytes.
    pub digest: ContentHash,
}

impl Confirmation {
    /// The confirmation of `listing`.
    pub fn of(
        agent: &str,
        source: SourceRef,
        observed_at: Timestamp,
        listing: &Listing,
    ) -> Result<Self, RecordError> {
        Ok(Self {
            v: CONFIRMATION_VERSION,
            agent: agent.to_owned(),
            source,
            observed_at,
            count: listing.artifacts.len() as u64,
            digest: listing.digest()?,
        })
    }

    /// Checks the fields that need no clock.
    pub fn validate(&self) -> Result<(), RecordError> {
        if self.v != CONFIRMATION_VERSION {
            return Err(invalid("v", format!("unsupported version {}", self.v)));
        }
        validate_ident("agent", &self.agent)?;
        validate_ident("source.id", &self.source.id)?;
        Ok(())
    }

    /// Whether `listing` is the one this confirmation names.
    pub fn matches(&self, listing: &Listing) -> Result<bool, RecordError> {
        Ok(self.count == listing.artifacts.len() as u64 && self.digest == listing.digest()?)
    }

    /// `hex(SHA-256(JCS(confirmation)))`, its identity (like a record id).
    pub fn confirmation_id(&self) -> Result<ContentHash, RecordError> {
        let bytes = serde_json_canonicalizer::to_vec(self)
            .map_err(|e| RecordError::Canonical(e.to_string()))?;
        Ok(ContentHash::of(&bytes))
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> RecordError {
    RecordError::Invalid {
        field,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::SourceType;

    fn a(l: &str, b: &[u8]) -> ListedArtifact {
        ListedArtifact {
            locator: l.into(),
            sha256: ContentHash::of(b),
        }
    }

    #[test]
    fn listing_is_sorted_unique_and_canonical() {
        let l = Listing::new(vec![a("b", b"2"), a("a", b"1"), a("b", b"3")]);
        assert_eq!(l.artifacts.len(), 2);
        assert_eq!(l.artifacts[0].locator, "a");
        let bytes = l.canonical_bytes().unwrap();
        assert!(bytes.starts_with(b"{\"artifacts\":[{\"locator\":\"a\""));
        assert_eq!(Listing::parse_canonical(&bytes).unwrap(), l);
        let pretty = serde_json::to_vec_pretty(&l).unwrap();
        assert!(Listing::parse_canonical(&pretty).is_err());
        let unsorted = br#"{"artifacts":[{"locator":"b","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},{"locator":"a","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}],"v":1}"#;
        assert!(Listing::parse_canonical(unsorted).is_err());
    }

    #[test]
    fn confirmation_binds_the_listing() {
        let l = Listing::new(vec![a("a", b"1")]);
        let src = SourceRef {
            id: "repo".into(),
            source_type: SourceType::Git,
        };
        let t = Timestamp::parse_utc("2026-12-01T00:00:00Z").unwrap();
        let c = Confirmation::of("agent-1", src, t, &l).unwrap();
        assert!(c.matches(&l).unwrap());
        assert!(!c.matches(&Listing::new(vec![a("a", b"2")])).unwrap());
        c.validate().unwrap();
        assert_eq!(c.confirmation_id().unwrap(), c.confirmation_id().unwrap());
    }
}
