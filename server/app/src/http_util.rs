//! Small HTTP checks shared by the API and the dashboard (issue 18): media types, same-site
//! redirect targets, the same-origin check of the dashboard's forms, query redaction for logs,
//! and the security headers every response carries.
//!
//! Everything here is pure (headers in, decision out) and unit-tested.

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use sha2::{Digest, Sha256};

/// Whether a `Content-Type` value is the media type `application/json` (case-insensitive), with
/// any parameters (`; charset=utf-8`). `application/jsonfoo`, `application/json+x`,
/// `application/problem+json`, lists and malformed parameters are not.
pub fn is_json_media_type(value: &str) -> bool {
    media_type_is(value, "application", "json")
}

/// Whether a `Content-Type` value is the media type `ty/subtype` (case-insensitive) with any
/// well-formed parameters (RFC 9110 §8.3.1: `type "/" subtype *( OWS ";" OWS [ parameter ] )`).
pub fn media_type_is(value: &str, ty: &str, subtype: &str) -> bool {
    let mut p = Parser {
        s: value.as_bytes(),
        i: 0,
    };
    p.ows();
    let Some(t) = p.token() else { return false };
    if !p.eat(b'/') {
        return false;
    }
    let Some(st) = p.token() else { return false };
    if !t.eq_ignore_ascii_case(ty.as_bytes()) || !st.eq_ignore_ascii_case(subtype.as_bytes()) {
        return false;
    }
    loop {
        p.ows();
        if p.done() {
            return true;
        }
        if !p.eat(b';') {
            return false;
        }
        p.ows();
        if p.done() || p.peek() == Some(b';') {
            continue; // an empty parameter is allowed
        }
        if p.token().is_none() || !p.eat(b'=') {
            return false;
        }
        let ok = if p.peek() == Some(b'"') {
            p.quoted_string()
        } else {
            p.token().is_some()
        };
        if !ok {
            return false;
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }

    /// `DQUOTE *( qdtext / quoted-pair ) DQUOTE`.
    fn quoted_string(&mut self) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => return true,
                b'\\' => match self.peek() {
                    Some(q)
                        if q == b'\t' || q == b' ' || (0x21..=0x7e).contains(&q) || q >= 0x80 =>
                    {
                        self.i += 1;
                    }
                    _ => return false,
                },
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => {}
                _ => return false,
            }
        }
        false
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// The redirect target for a dashboard `next` parameter: a path on this site, parsed and
/// re-serialised, or `None` (callers fall back to `/`).
///
/// Refused: anything not starting with a single `/` (`//evil`, `https://evil`, `javascript:`),
/// backslashes (browsers read `/\evil` as `//evil`), control characters and whitespace
/// (browsers strip TAB/CR/LF, so `/<TAB>/evil` becomes `//evil`; CR/LF would split headers), and
/// any path that the URL parser normalises into something starting with `//` (`/.//evil`).
pub fn same_site_path(next: &str) -> Option<String> {
    if next.len() > 2048
        || !next.starts_with('/')
        || next.starts_with("//")
        || next
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let base = url::Url::parse("http://aims.invalid/").ok()?;
    let url = base.join(next).ok()?;
    if url.scheme() != "http"
        || url.host_str() != Some("aims.invalid")
        || url.port().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    let path = url.path();
    if !path.starts_with('/') || path.starts_with("//") || path.contains('\\') {
        return None;
    }
    let mut out = path.to_owned();
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

/// Why a state-changing browser request (a dashboard form post) does not come from this site,
/// if it does not. `Sec-Fetch-Site`, when sent, must be `same-origin` (or `none`: the user
/// acted directly); `Origin`, when sent, must name the host the request was sent to (scheme
/// aside, so a TLS-terminating proxy in front does not matter; `null`, which a browser sends
/// from an opaque origin such as a sandboxed frame, is refused); without `Origin`, `Referer`,
/// when sent, must name that host too. A request with none of these headers is not from a
/// browser and passes (CSRF needs a browser; every current browser sends `Origin` on a
/// cross-origin POST). The dashboard's forms check a token besides (`csrf.rs`).
pub fn cross_site_refusal(headers: &HeaderMap) -> Option<&'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        match site.to_str() {
            Ok("same-origin" | "none") => {}
            _ => return Some("the form was not submitted from this site (Sec-Fetch-Site)"),
        }
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return Some("unreadable Origin header");
        };
        if !names_host(origin, host) {
            return Some("the form was not submitted from this site (Origin)");
        }
    } else if let Some(referer) = headers.get(header::REFERER) {
        let Ok(referer) = referer.to_str() else {
            return Some("unreadable Referer header");
        };
        if !names_host(referer, host) {
            return Some("the form was not submitted from this site (Referer)");
        }
    }
    None
}

/// Whether the URL `url` (an `Origin` or `Referer` value) is on `host` (`name[:port]`).
fn names_host(url: &str, host: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty() && authority.eq_ignore_ascii_case(host)
}

/// A query string for logs: the values of parameters whose (decoded) name contains `token`
/// are replaced by `[redacted]`; everything else is kept as sent.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (raw_key, _) = pair.split_once('=').unwrap_or((pair, ""));
            let key: String = url::form_urlencoded::parse(raw_key.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect();
            if key.to_ascii_lowercase().contains("token") {
                format!("{raw_key}=[redacted]")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The Content-Security-Policy of the dashboard's pages: server-rendered HTML with one inline
/// stylesheet (allowed by its hash), no scripts, no frames, forms only to this site.
pub static HTML_CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD
        .encode(Sha256::digest(crate::dashboard::CSS.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
});

/// The Content-Security-Policy of every other response (JSON, text, downloads).
pub const OTHER_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds the security headers to a response: CSP (the pages' own for HTML), `X-Frame-Options`,
/// `Referrer-Policy`, `X-Content-Type-Options`, `Cache-Control: no-store` unless the handler set
/// a cache policy, and HSTS when the server speaks TLS.
pub fn add_security_headers(headers: &mut HeaderMap, tls: bool) {
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| media_type_is(v, "text", "html"));
    let csp = if html {
        HeaderValue::from_str(&HTML_CSP).ok()
    } else {
        Some(HeaderValue::from_static(OTHER_CSP))
    };
    if let Some(csp) = csp {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}

/// `s` as one URL path segment: every byte but RFC 3986's unreserved ones percent-encoded (a
/// system ID may hold `/`, which must not split the path).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `a=b&c=d`, each value URL-encoded (links the pages build).
pub fn query(pairs: &[(&str, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_18_l_content_type_is_a_parsed_media_type() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json ; charset=utf-8",
            "application/json; charset=\"utf-8\"",
            "application/json; a=\"x;y\\\"z\"",
            "application/json;",
            "application/json;;charset=utf-8",
            " application/json ",
        ] {
            assert!(is_json_media_type(ok), "{ok:?} is JSON");
        }
        for bad in [
            "",
            "application/jsonfoo",
            "application/json+x",
            "application/problem+json",
            "application/json x",
            "application/json, text/plain",
            "application/json;charset",
            "application/json; charset=",
            "application/json; =utf-8",
            "application/json; a=\"unterminated",
            "application/json; a=\"bad\\\u{1}\"",
            "application/ json",
            "application /json",
            "application/json\0",
            "text/json",
            "json",
            "application",
            "application/",
            "/json",
        ] {
            assert!(!is_json_media_type(bad), "{bad:?} is not JSON");
        }
        assert!(media_type_is(
            "application/x-www-form-urlencoded; charset=utf-8",
            "application",
            "x-www-form-urlencoded"
        ));
        assert!(!media_type_is(
            "multipart/form-data; boundary=x",
            "application",
            "x-www-form-urlencoded"
        ));
    }

    #[test]
    fn issue_18_m3_open_redirect_next_is_a_same_site_path() {
        for (next, want) in [
            ("/", Some("/")),
            ("/systems/churn-predictor", Some("/systems/churn-predictor")),
            ("/evidence/abc?x=1", Some("/evidence/abc?x=1")),
            ("/systems/a/../b", Some("/systems/b")),
            ("/systems/x%2Fy", Some("/systems/x%2Fy")),
            ("/syst\u{e8}me", Some("/syst%C3%A8me")),
            ("/a#frag", Some("/a")),
        ] {
            assert_eq!(same_site_path(next).as_deref(), want, "{next:?}");
        }
        for hostile in [
            "",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/%0d%0a",
            " /x",
            "/x y",
            "/\u{3000}/evil.example",
            "https://evil.example",
            "http:evil.example",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "evil.example",
            "/.//evil.example",
            "/x/..//evil.example",
            "/\r\nSet-Cookie: x=y",
            "/\u{0}",
        ] {
            let got = same_site_path(hostile);
            assert!(
                got.is_none() || got.as_deref().is_some_and(|p| !p.starts_with("//")),
                "{hostile:?} -> {got:?}"
            );
            if hostile != "/%0d%0a" {
                assert_eq!(got, None, "{hostile:?}");
            }
        }
        // Percent-encoded CR/LF stay encoded: a harmless path, never a header break.
        assert_eq!(same_site_path("/%0d%0a").as_deref(), Some("/%0d%0a"));
    }

    #[test]
    fn issue_18_m7_cross_site_form_posts_are_refused() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert_eq!(
            cross_site_refusal(&h(&[("host", "a:1")])),
            None,
            "not a browser"
        );
        assert_eq!(
            cross_site_refusal(&h(&[
                ("host", "a:1"),
                ("origin", "http://a:1"),
                ("sec-fetch-site", "same-origin")
            ])),
            None
        );
        assert_eq!(
            cross_site_refusal(&h(&[("host", "a:1"), ("origin", "https://A:1")])),
            None,
            "a TLS proxy in front"
        );
        assert_eq!(
            cross_site_refusal(&h(&[
                ("host", "a:1"),
                ("referer", "http://a:1/systems/x?y=1")
            ])),
            None,
            "an older browser that sends only Referer"
        );
        for bad in [
            &[("host", "a:1"), ("referer", "http://evil.example/a:1")][..],
            &[("host", "a:1"), ("referer", "http://a:1.evil.example/")],
            &[("host", "a:1"), ("origin", "http://evil.example")],
            &[("host", "a:1"), ("origin", "null")],
            &[("host", "a:1"), ("origin", "http://a:2")],
            &[("origin", "http://a:1")],
            &[("host", "a:1"), ("sec-fetch-site", "cross-site")],
            &[("host", "a:1"), ("sec-fetch-site", "same-site")],
            &[
                ("host", "a:1"),
                ("origin", "http://a:1"),
                ("sec-fetch-site", "cross-site"),
            ],
        ] {
            assert!(cross_site_refusal(&h(bad)).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn issue_18_l_log_query_redacts_tokens() {
        assert_eq!(
            redact_query("token=aims_secret&next=/x"),
            "token=[redacted]&next=/x"
        );
        assert_eq!(redact_query("%74oken=aims_secret"), "%74oken=[redacted]");
        assert_eq!(redact_query("access_token=s"), "access_token=[redacted]");
        assert_eq!(redact_query("TOKEN"), "TOKEN=[redacted]");
        assert_eq!(redact_query("system=fraud"), "system=fraud");
    }

    #[test]
    fn issue_18_l_headers_html_gets_the_page_policy() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        add_security_headers(&mut h, true);
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("style-src 'sha256-"));
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert!(h.contains_key(header::STRICT_TRANSPORT_SECURITY));
        let mut j = HeaderMap::new();
        j.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        add_security_headers(&mut j, false);
        assert_eq!(j[header::CONTENT_SECURITY_POLICY], OTHER_CSP);
        assert_eq!(
            j[header::CACHE_CONTROL],
            "max-age=60",
            "handlers may choose"
        );
        assert!(!j.contains_key(header::STRICT_TRANSPORT_SECURITY));
    }
}
