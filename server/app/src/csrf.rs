//! Cross-site request forgery protection of the dashboard's forms (issue 14; ARCHITECTURE §10a).
//!
//! The dashboard's write forms (statement of applicability, uploads, risk acceptance) are driven
//! by the browser's session cookie, so a page on another site could try to make a signed-in
//! admin's browser submit them. Three independent layers refuse that:
//!
//! 1. The session cookie is `SameSite=Strict` (`auth.rs`): browsers do not attach it to a request
//!    another site starts.
//! 2. `Sec-Fetch-Site`, `Origin` and (when `Origin` is absent) `Referer` must name this site when
//!    the browser sends them ([`crate::http_util::cross_site_refusal`]); the pages' referrer
//!    policy is `same-origin`, so browsers send both on our own forms and nothing to other sites.
//! 3. Every form carries a synchronizer token in the hidden field [`FIELD`]:
//!    `base64url(HMAC-SHA256(form key, label ‖ session id))`. The form key is derived from the
//!    log key ([`crate::keys::LogKeys::form_key`]), so replicas agree and a restart does not
//!    invalidate open pages; the session id is the cookie's secret, which another site can
//!    neither read nor guess, so it cannot compute the token, and a token is worthless with any
//!    other session. The token is compared in constant time.
//!
//! Bearer-token calls of the `/v1` API are not forms: a browser never attaches an
//! `Authorization` header by itself, and the cookie is not accepted there on writes.

use base64::Engine;
use subtle::ConstantTimeEq;

/// Name of the hidden form field that carries the token.
pub const FIELD: &str = "csrf";

/// Separates form tokens from anything else the form key could be used for.
const LABEL: &[u8] = b"aims-evidence form token v1\n";

/// The form token of the session `session_id` under `key`.
pub fn form_token(key: &[u8; 32], session_id: &str) -> String {
    let mac = crate::keys::hmac_sha256(key, &[LABEL, session_id.as_bytes()]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
}

/// Why a form post's token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRefusal {
    /// The form carried no token.
    Missing,
    /// The token is not this session's.
    Wrong,
}

impl TokenRefusal {
    /// A sentence for the refusal page.
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => {
                "This form arrived without its security token, so it was not saved. Open the \
                 page again from the dashboard and resubmit."
            }
            Self::Wrong => {
                "This form's security token does not belong to your session (the page is older \
                 than your sign-in, or the form came from another site), so it was not saved. \
                 Open the page again from the dashboard and resubmit."
            }
        }
    }
}

/// Checks the token a form sent against the one of `session_id`, in constant time.
pub fn check_token(
    key: &[u8; 32],
    session_id: &str,
    sent: Option<&str>,
) -> Result<(), TokenRefusal> {
    let sent = sent.map(str::trim).filter(|s| !s.is_empty());
    let Some(sent) = sent else {
        return Err(TokenRefusal::Missing);
    };
    let expected = form_token(key, session_id);
    // Lengths are public (every token has 43 characters); the bytes are compared in constant time.
    if bool::from(expected.as_bytes().ct_eq(sent.as_bytes())) {
        Ok(())
    } else {
        Err(TokenRefusal::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const SESSION: &str = "Zm9ybS10b2tlbi10ZXN0LXNlc3Npb24taWQtb25lLTE";
    const OTHER: &str = "Zm9ybS10b2tlbi10ZXN0LXNlc3Npb24taWQtdHdvLTI";

    #[test]
    fn the_sessions_own_token_passes() {
        let t = form_token(&KEY, SESSION);
        assert_eq!(t.len(), 43, "{t}");
        assert_eq!(check_token(&KEY, SESSION, Some(&t)), Ok(()));
    }

    #[test]
    fn a_missing_or_empty_token_is_refused() {
        assert_eq!(check_token(&KEY, SESSION, None), Err(TokenRefusal::Missing));
        assert_eq!(
            check_token(&KEY, SESSION, Some("  ")),
            Err(TokenRefusal::Missing)
        );
    }

    #[test]
    fn a_wrong_token_is_refused() {
        let mut t = form_token(&KEY, SESSION);
        let last = if t.ends_with('A') { 'B' } else { 'A' };
        t.pop();
        t.push(last);
        assert_eq!(
            check_token(&KEY, SESSION, Some(&t)),
            Err(TokenRefusal::Wrong)
        );
        assert_eq!(
            check_token(&KEY, SESSION, Some("not-a-token")),
            Err(TokenRefusal::Wrong)
        );
    }

    #[test]
    fn another_sessions_token_is_refused() {
        let theirs = form_token(&KEY, OTHER);
        assert_ne!(theirs, form_token(&KEY, SESSION));
        assert_eq!(
            check_token(&KEY, SESSION, Some(&theirs)),
            Err(TokenRefusal::Wrong)
        );
    }

    #[test]
    fn a_token_under_another_servers_key_is_refused() {
        let t = form_token(&[8; 32], SESSION);
        assert_eq!(
            check_token(&KEY, SESSION, Some(&t)),
            Err(TokenRefusal::Wrong)
        );
    }
}
