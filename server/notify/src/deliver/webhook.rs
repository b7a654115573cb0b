//! The `webhook` sink: `POST url` with the body of [`Notification::body_bytes`] and
//!
//! ```text
//! Content-Type: application/json
//! X-Aims-Signature: sha256=<lowercase hex HMAC-SHA256(secret, body)>
//! X-Aims-Delivery: <delivery id, the same on every retry>
//! X-Aims-Event: <event>
//! User-Agent: aims-server/<version>
//! ```
//!
//! [`signature`] and [`verify_signature`] are the two sides of the signature, for receivers
//! written in Rust and for tests.

use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::CONTENT_TYPE;
use sha2::{Digest, Sha256};

use super::{Deliverer, Outcome, classify_plain, send};
use crate::config::WebhookSink;
use crate::event::Notification;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Aims-Signature";
/// The header carrying the delivery id.
pub const DELIVERY_HEADER: &str = "X-Aims-Delivery";
/// The header carrying the event name.
pub const EVENT_HEADER: &str = "X-Aims-Event";

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `secret`. Keys longer than SHA-256's 64-byte block are hashed first
/// and shorter ones zero-padded, as RFC 2104 says; doing it here makes building infallible.
fn mac(secret: &[u8]) -> HmacSha256 {
    let mut key = hmac::digest::Key::<HmacSha256>::default();
    if secret.len() > key.len() {
        let digest = Sha256::digest(secret);
        key[..digest.len()].copy_from_slice(&digest);
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    HmacSha256::new(&key)
}

/// The `X-Aims-Signature` value of `body`: `sha256=` and the lowercase hex HMAC-SHA256.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

/// Whether `header` (an `X-Aims-Signature` value) signs `body` with `secret`; compares in
/// constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(&sig).is_ok()
}

/// One signed POST.
pub(super) async fn deliver(d: &Deliverer, w: &WebhookSink, n: &Notification) -> Outcome {
    let body = n.body_bytes();
    let sig = signature(w.secret.expose().as_bytes(), &body);
    let req = d
        .client
        .post(w.url.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, sig)
        .header(DELIVERY_HEADER, n.delivery.as_str())
        .header(EVENT_HEADER, n.event.as_str())
        .body(body);
    match send(req).await {
        Ok(resp) => classify_plain(resp, d.options.max_response_bytes).await,
        Err(outcome) => outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_vectors() {
        // Test case 2: a short key.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            signature(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "sha256=60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        // A key of exactly one block is used as is.
        let key = [0x0b_u8; 64];
        let mut m = HmacSha256::new_from_slice(&key).unwrap();
        m.update(b"x");
        assert_eq!(
            signature(&key, b"x"),
            format!("sha256={}", hex::encode(m.finalize().into_bytes()))
        );
    }

    #[test]
    fn matches_the_documented_receivers() {
        // The value `openssl dgst -sha256 -hmac` and Python's `hmac.new(…).hexdigest()` print
        // for this body and secret (the recipes of the crate docs).
        let body = br#"{"event":"test","delivery":"d","sent_at":"2026-03-01T10:00:00Z"}"#;
        assert_eq!(
            signature(b"whsec_5up3r-s3cr3t", body),
            "sha256=05e6d991723d297d6d6968b36b25da290d6ca06fb79c7aefce2e145c04cc8c82"
        );
    }

    #[test]
    fn verification() {
        let sig = signature(b"s3cret", b"{}");
        assert!(verify_signature(b"s3cret", b"{}", &sig));
        assert!(!verify_signature(b"other", b"{}", &sig));
        assert!(!verify_signature(b"s3cret", b"{ }", &sig));
        assert!(!verify_signature(b"s3cret", b"{}", "sha1=00"));
        assert!(!verify_signature(b"s3cret", b"{}", "sha256=zz"));
    }
}
