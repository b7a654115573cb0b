//! The `slack` sink: an incoming-webhook message `{"text", "blocks"}` with the same content as
//! the webhook payload: the subject as header, the message, system, controls, kind and since,
//! and links to the dashboard, the evidence and the inclusion proofs. `text` is the plain
//! fallback Slack shows in notifications. Status handling is the webhook's (Slack answers
//! `200 ok`, `400 invalid_payload`, `404 no_service`, `410 channel_is_archived`, `429` with
//! `Retry-After`).

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use super::{Deliverer, Outcome, classify_plain, send};
use crate::config::SlackSink;
use crate::event::Notification;

/// Evidence records linked in one message (Slack caps a section's text at 3000 characters).
const MAX_EVIDENCE_LINKS: usize = 5;

/// One message.
pub(super) async fn deliver(d: &Deliverer, s: &SlackSink, n: &Notification) -> Outcome {
    let req = d
        .client
        .post(s.url.expose())
        .header(CONTENT_TYPE, "application/json")
        .body(message(n).to_string());
    match send(req).await {
        Ok(resp) => classify_plain(resp, d.options.max_response_bytes).await,
        Err(outcome) => outcome,
    }
}

/// Slack's mrkdwn escaping: `&`, `<` and `>` only.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `<url|label>`; the URLs are built by [`crate::Links`] and percent-encoded, but `|` and `>`
/// are encoded again to be sure the link cannot break out.
fn link(url: &str, label: &str) -> String {
    let url = url.replace('|', "%7C").replace('>', "%3E");
    format!("<{url}|{}>", esc(label))
}

/// The message payload.
pub(crate) fn message(n: &Notification) -> Value {
    let subject = n.subject();
    let header: String = subject.chars().take(150).collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": esc(n.message())}}),
    ];
    let mut fields: Vec<(&str, String)> = Vec::new();
    if let Some(f) = &n.finding {
        fields.push(("System", f.system.clone()));
        if !f.controls.is_empty() {
            fields.push(("Controls", f.controls.join(", ")));
        }
        fields.push(("Kind", f.kind.clone()));
        fields.push(("Since", f.since.clone()));
        if let Some(at) = &f.expires_at {
            fields.push(("Window closes", at.clone()));
        }
    }
    if let Some(s) = &n.source {
        fields.push(("Source", format!("{}/{}", s.agent, s.source)));
        if let Some(system) = &s.system {
            fields.push(("System", system.clone()));
        }
        fields.push(("Silent since", s.silent_since.clone()));
        if let Some(seen) = &s.last_seen {
            fields.push(("Last seen", seen.clone()));
        }
    }
    if !fields.is_empty() {
        let fields: Vec<Value> = fields
            .iter()
            .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", esc(v))}))
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    if let Some(links) = n.links() {
        let mut parts = vec![link(&links.dashboard, "Dashboard")];
        for (i, (ev, proof)) in links
            .evidence
            .iter()
            .zip(&links.proofs)
            .take(MAX_EVIDENCE_LINKS)
            .enumerate()
        {
            parts.push(format!(
                "{} ({})",
                link(ev, &format!("evidence {}", i + 1)),
                link(proof, "proof")
            ));
        }
        if links.evidence.len() > MAX_EVIDENCE_LINKS {
            parts.push(format!(
                "and {} more",
                links.evidence.len() - MAX_EVIDENCE_LINKS
            ));
        }
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": parts.join(" · ")}]
        }));
    }
    json!({
        "text": format!("{subject}\n{}", n.message()),
        "blocks": blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventType, FindingPayload, Links};

    #[test]
    fn message_content() {
        let controls = vec!["A.6.2.6".to_owned()];
        let ids: Vec<String> = (0..7).map(|i| format!("r{i}")).collect();
        let n = Notification::finding(
            EventType::FindingOpened,
            "d".into(),
            "2026-01-01T00:00:00Z".into(),
            FindingPayload {
                id: "f".into(),
                kind: "changed".into(),
                system: "fraud".into(),
                links: Links::for_finding("https://aims.example", "fraud", &controls, &ids),
                controls,
                since: "2026-01-01T00:00:00Z".into(),
                message: "a <b> & c".into(),
                evidence: ids,
                ..FindingPayload::default()
            },
        );
        let m = message(&n);
        let text = m.to_string();
        assert!(
            m["text"]
                .as_str()
                .unwrap()
                .starts_with("finding opened: changed on fraud")
        );
        assert_eq!(m["blocks"][0]["type"], "header");
        assert_eq!(m["blocks"][1]["text"]["text"], "a &lt;b&gt; &amp; c");
        assert!(text.contains("*Controls*\\nA.6.2.6"));
        assert!(text.contains("<https://aims.example/systems/fraud/controls/A.6.2.6|Dashboard>"));
        assert!(text.contains("<https://aims.example/v1/evidence/r0/proof|proof>"));
        assert!(text.contains("and 2 more"));
        assert!(!text.contains("evidence/r5"));

        let t = message(&Notification::test(
            "d".into(),
            "2026-01-01T00:00:00Z".into(),
        ));
        assert_eq!(t["blocks"].as_array().unwrap().len(), 2);
    }
}
