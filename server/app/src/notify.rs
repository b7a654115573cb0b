//! Issue 15 (DESIGN §12.4): the notification sender. The store's outbox holds the events
//! (finding changes written with the assessment that produced them, expiring windows, silent
//! sources); this loop fans each new event out to every configured sink, claims the deliveries
//! that are due (one replica per delivery, under a lease), makes one attempt each with
//! `aims-notify` and records the outcome: delivered, retried later with jittered backoff
//! (`Retry-After` honoured), refused, or dead after `notify.max_age_secs`. Undelivered events
//! survive restarts (they are rows); every attempt of one delivery carries the same delivery id
//! and the same bytes.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use aims_model::wire::{ControlView, SourceHealth};
use aims_model::{ControlStatus, Finding, Timestamp};
use aims_notify::{
    Deliverer, EventType, FindingPayload, Links, Notification, NotifySettings, Outcome, Sink,
    SourcePayload,
};
use aims_store::outbox::{Claimed, DeliveryResult, NewEvent, StoredEvent};

use crate::{AppState, ServerError, Settings};

/// Deliveries attempted per pass (concurrently; each bounded by the request timeout).
const CLAIM: u32 = 32;
/// Events routed per sink per query.
const ROUTE_PAGE: u32 = 500;

/// The configured sinks and how to reach them.
pub struct Notifier {
    sinks: Vec<Sink>,
    deliverer: Deliverer,
    settings: NotifySettings,
    public_url: OnceLock<String>,
    floors: tokio::sync::Mutex<BTreeMap<String, u64>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field(
                "sinks",
                &self.sinks.iter().map(Sink::name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// The notifier of `settings`, or `None` when no sink is configured. Every sink setting is
    /// checked here (URLs, secret files, filters), so `serve` stops before it listens, naming
    /// the setting.
    pub fn from_settings(settings: &Settings) -> Result<Option<Arc<Self>>, ServerError> {
        let invalid =
            |e: &dyn std::fmt::Display| ServerError::Startup(format!("invalid setting {e}"));
        settings.notify.validate().map_err(|e| invalid(&e))?;
        if settings.notifications.is_empty() {
            return Ok(None);
        }
        let sinks = aims_notify::build_sinks(&settings.notifications).map_err(|e| invalid(&e))?;
        let deliverer = Deliverer::new(settings.notify.deliverer_options())
            .map_err(|e| ServerError::Startup(format!("notifications: {e}")))?;
        let public_url = OnceLock::new();
        if let Some(u) = &settings.public_url {
            let _ = public_url.set(u.trim_end_matches('/').to_owned());
        }
        Ok(Some(Arc::new(Self {
            sinks,
            deliverer,
            settings: settings.notify.clone(),
            public_url,
            floors: tokio::sync::Mutex::default(),
        })))
    }

    /// The dashboard's address for links, when `public_url` is not set: the listening address.
    pub fn default_public_url(&self, url: &str) {
        let _ = self.public_url.set(url.trim_end_matches('/').to_owned());
    }

    fn public_url(&self) -> &str {
        self.public_url.get().map_or("", String::as_str)
    }

    /// Days before a window closes that `evidence.expiring` is raised.
    pub fn warn_days(&self) -> u32 {
        self.settings.warn_days
    }

    /// The configured sinks.
    pub fn sinks(&self) -> &[Sink] {
        &self.sinks
    }

    /// Records where each sink starts (the newest event now: a new sink is told what happens
    /// from now on). Called before the first assessment of a start.
    pub async fn init(&self, state: &AppState) -> Result<(), aims_store::StoreError> {
        let mut floors = self.floors.lock().await;
        for sink in &self.sinks {
            let floor = state.store.sink_floor(sink.name()).await?;
            floors.insert(sink.name().to_owned(), floor);
        }
        Ok(())
    }

    /// One test notification to every sink, with each outcome (`aims-server notify test`).
    pub async fn test_all(&self) -> Vec<(String, &'static str, Outcome)> {
        let n = Notification::test(
            aims_notify::event::new_delivery_id(),
            Timestamp::now().to_string(),
        );
        let mut out = Vec::new();
        for sink in &self.sinks {
            let outcome = self.deliverer.deliver(sink, &n).await;
            out.push((sink.name().to_owned(), sink.kind(), outcome));
        }
        out
    }
}

/// `now` plus `secs` seconds (or `now` past the representable range).
fn later(now: Timestamp, secs: i64) -> Timestamp {
    now.checked_add_millis(secs.saturating_mul(1000))
        .unwrap_or(now)
}

/// The facts of an `evidence.expiring` event, as stored in the outbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Expiring {
    system: String,
    controls: Vec<String>,
    evidence: Vec<String>,
    expires_at: Timestamp,
}

/// The `evidence.expiring` events of one assessment: per AI system, each group of fresh
/// controls resting on the same evidence whose window closes within `warn_days` of `now`, once
/// per evidence and window (the key names both).
pub fn expiring_events(
    system: &str,
    controls: &[ControlView],
    now: Timestamp,
    warn_days: u32,
) -> Vec<NewEvent> {
    let horizon = now.checked_add_days(warn_days).unwrap_or(now);
    let mut groups: BTreeMap<(Timestamp, Vec<String>), Vec<String>> = BTreeMap::new();
    for v in controls {
        let Some(until) = v.fresh_until else {
            continue;
        };
        if v.status != ControlStatus::Fresh || until <= now || until > horizon {
            continue;
        }
        let mut evidence: Vec<String> = v
            .evidence
            .iter()
            .map(|e| e.record_id.as_str().to_owned())
            .collect();
        evidence.sort();
        groups
            .entry((until, evidence))
            .or_default()
            .push(v.control.clone());
    }
    groups
        .into_iter()
        .filter_map(|((until, evidence), controls)| {
            let facts = Expiring {
                system: system.to_owned(),
                controls,
                evidence,
                expires_at: until,
            };
            let key = format!(
                "evidence.expiring:{system}:{}:{until}",
                facts.evidence.first().map_or("-", String::as_str)
            );
            Some(NewEvent {
                key,
                event: EventType::EvidenceExpiring.as_str().to_owned(),
                system: Some(system.to_owned()),
                payload: serde_json::to_string(&facts).ok()?,
                created_at: now,
            })
        })
        .collect()
}

/// The `source.silent` event of a source that went silent at `since`.
pub fn silent_event(health: &SourceHealth, since: Timestamp) -> Option<NewEvent> {
    Some(NewEvent {
        key: format!("source.silent:{}/{}:{since}", health.agent, health.source),
        event: EventType::SourceSilent.as_str().to_owned(),
        system: None,
        payload: serde_json::to_string(health).ok()?,
        created_at: since,
    })
}

/// The owners of a finding's evidence by the CODEOWNERS files its sources hold: for each
/// record, the rules of the newest CODEOWNERS record of the same source (and AI system) matched
/// against the record's repository path, the last matching rule winning. Empty when unknown.
/// The histories read during one pass, by AI system: several findings of one system delivered
/// in the same pass read its history once.
type Histories = tokio::sync::Mutex<BTreeMap<String, Arc<Vec<aims_store::StoredEvidence>>>>;

async fn owners(state: &AppState, histories: &Histories, e: &StoredEvent) -> Vec<String> {
    let Ok(f) = serde_json::from_str::<Finding>(&e.payload) else {
        return Vec::new();
    };
    let history = {
        let mut memo = histories.lock().await;
        match memo.get(&f.system) {
            Some(h) => h.clone(),
            None => {
                let Ok(h) = state.store.history(&f.system).await else {
                    return Vec::new();
                };
                let h = Arc::new(h);
                memo.insert(f.system.clone(), h.clone());
                h
            }
        }
    };
    let is_codeowners = |locator: &str| {
        aims_collect::formats::codeowners::repo_path(locator)
            .is_some_and(|p| p.rsplit('/').next() == Some("CODEOWNERS"))
    };
    // Newest CODEOWNERS per source (history is in ledger order).
    let mut rules: BTreeMap<&str, &serde_json::Map<String, serde_json::Value>> = BTreeMap::new();
    for r in history.iter() {
        if r.record.event == aims_model::RecordEvent::Observed && is_codeowners(&r.record.locator) {
            rules.insert(r.record.source.id.as_str(), &r.record.metadata);
        }
    }
    let mut out: Vec<String> = Vec::new();
    for id in &f.evidence {
        let Some(r) = history.iter().find(|r| &r.record_id == id) else {
            continue;
        };
        let (Some(meta), Some(path)) = (
            rules.get(r.record.source.id.as_str()),
            aims_collect::formats::codeowners::repo_path(&r.record.locator),
        ) else {
            continue;
        };
        for o in aims_collect::formats::codeowners::owners_of(meta, path) {
            if !out.contains(&o) {
                out.push(o);
            }
        }
    }
    out
}

/// The notification of a stored event, as it is sent (the same bytes on every attempt).
fn render(
    n: &Notifier,
    e: &StoredEvent,
    delivery: &str,
    owners: Vec<String>,
) -> Result<Notification, String> {
    let event: EventType = e
        .event
        .parse()
        .map_err(|err: aims_notify::event::UnknownEvent| err.to_string())?;
    let sent_at = e.created_at.to_string();
    let base = n.public_url();
    match event {
        EventType::FindingOpened | EventType::FindingResolved | EventType::FindingAcknowledged => {
            let f: Finding = serde_json::from_str(&e.payload).map_err(|err| err.to_string())?;
            let evidence: Vec<String> = f.evidence.iter().map(|r| r.as_str().to_owned()).collect();
            let verb = match event {
                EventType::FindingOpened => "",
                EventType::FindingResolved => "Resolved: ",
                _ => "Accepted risk: ",
            };
            let message = match (&f.acknowledged, event) {
                (Some(a), EventType::FindingAcknowledged) => format!(
                    "{} ({} accepted the risk until {}: {})",
                    f.message, a.by, a.expires_at, a.reason
                ),
                _ => format!("{verb}{}", f.message),
            };
            Ok(Notification::finding(
                event,
                delivery.to_owned(),
                sent_at,
                FindingPayload {
                    id: f.id.clone(),
                    kind: f.kind.as_str().to_owned(),
                    system: f.system.clone(),
                    links: Links::for_finding(base, &f.system, &f.controls, &evidence),
                    controls: f.controls,
                    since: f.since.to_string(),
                    message,
                    evidence,
                    acknowledged: f
                        .acknowledged
                        .as_ref()
                        .and_then(|a| serde_json::to_value(a).ok()),
                    expires_at: None,
                    owners,
                },
            ))
        }
        EventType::EvidenceExpiring => {
            let x: Expiring = serde_json::from_str(&e.payload).map_err(|err| err.to_string())?;
            let days =
                (x.expires_at.unix_millis() - e.created_at.unix_millis()).max(0) / 86_400_000;
            Ok(Notification::finding(
                event,
                delivery.to_owned(),
                sent_at,
                FindingPayload {
                    id: aims_store::outbox::delivery_id(&e.key, ""),
                    kind: "expiring".to_owned(),
                    system: x.system.clone(),
                    links: Links::for_finding(base, &x.system, &x.controls, &x.evidence),
                    message: format!(
                        "The evidence behind {} of {} stops being fresh at {} (in {days} days) \
                         unless newer evidence arrives.",
                        x.controls.join(", "),
                        x.system,
                        x.expires_at
                    ),
                    controls: x.controls,
                    since: e.created_at.to_string(),
                    evidence: x.evidence,
                    acknowledged: None,
                    expires_at: Some(x.expires_at.to_string()),
                    owners: Vec::new(),
                },
            ))
        }
        EventType::SourceSilent => {
            let h: SourceHealth =
                serde_json::from_str(&e.payload).map_err(|err| err.to_string())?;
            Ok(Notification::source(
                event,
                delivery.to_owned(),
                sent_at,
                SourcePayload {
                    message: format!(
                        "Source {} of agent {} has sent nothing since {}.",
                        h.source,
                        h.agent,
                        h.last_poll_at
                            .map_or_else(|| "it was registered".to_owned(), |t| t.to_string())
                    ),
                    silent_since: e.created_at.to_string(),
                    last_seen: h.last_poll_at.map(|t| t.to_string()),
                    agent: h.agent,
                    source: h.source,
                    system: None,
                    links: Links::for_source(base),
                },
            ))
        }
        EventType::Test => Ok(Notification::test(delivery.to_owned(), sent_at)),
    }
}

/// Runs the sender until `shutdown` changes: a pass every second.
pub async fn run(
    state: AppState,
    notifier: Arc<Notifier>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut shutdown = shutdown;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = pass(&state, &notifier).await {
                    tracing::warn!(error = %e, "notification pass failed");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// Routes new events to the sinks, then attempts every due delivery once.
pub async fn pass(state: &AppState, n: &Notifier) -> Result<usize, aims_store::StoreError> {
    let now = Timestamp::now();
    let floors = n.floors.lock().await.clone();
    for sink in &n.sinks {
        let floor = match floors.get(sink.name()) {
            Some(f) => *f,
            None => state.store.sink_floor(sink.name()).await?,
        };
        loop {
            let events = state
                .store
                .unrouted_events(sink.name(), floor, ROUTE_PAGE)
                .await?;
            if events.is_empty() {
                break;
            }
            let routes: Vec<(u64, bool)> =
                events.iter().map(|e| (e.seq, wanted(n, sink, e))).collect();
            state.store.route_events(sink.name(), &routes, now).await?;
            if events.len() < ROUTE_PAGE as usize {
                break;
            }
        }
    }
    let timeout = n.settings.timeout_secs;
    let lease_until = later(
        now,
        i64::try_from(timeout.saturating_mul(3)).unwrap_or(900) + 30,
    );
    let claimed = state
        .store
        .claim_deliveries(now, lease_until, CLAIM)
        .await?;
    let count = claimed.len();
    let histories = Histories::default();
    let attempts = claimed
        .into_iter()
        .map(|c| attempt(state, n, &histories, c));
    for r in futures_util::future::join_all(attempts).await {
        r?;
    }
    Ok(count)
}

/// Whether `sink` is told about `e`: its `events` and `systems` filters, and for an expiring
/// window, its own `warn_days` (else `notify.warn_days`).
fn wanted(n: &Notifier, sink: &Sink, e: &StoredEvent) -> bool {
    let Ok(kind) = e.event.parse::<EventType>() else {
        return false;
    };
    if !sink.wants(kind, e.system.as_deref()) {
        return false;
    }
    if kind != EventType::EvidenceExpiring {
        return true;
    }
    let days = sink.warn_days().unwrap_or(n.settings.warn_days);
    serde_json::from_str::<Expiring>(&e.payload).is_ok_and(|x| {
        x.expires_at.unix_millis() - e.created_at.unix_millis() <= i64::from(days) * 86_400_000
    })
}

async fn attempt(
    state: &AppState,
    n: &Notifier,
    histories: &Histories,
    c: Claimed,
) -> Result<(), aims_store::StoreError> {
    let Some(sink) = n.sinks.iter().find(|s| s.name() == c.sink) else {
        let result = DeliveryResult::Dead {
            error: format!("sink {:?} is no longer configured", c.sink),
        };
        return state
            .store
            .finish_delivery(c.event.seq, &c.sink, &result, Timestamp::now())
            .await;
    };
    // Assignees for the GitHub sink: the owners of the evidence by its CODEOWNERS.
    let owners = if sink.kind() == "github" && c.event.event.starts_with("finding.") {
        owners(state, histories, &c.event).await
    } else {
        Vec::new()
    };
    let result = match render(n, &c.event, &c.delivery, owners) {
        Err(reason) => DeliveryResult::Failed {
            error: format!("cannot render the event: {reason}"),
        },
        Ok(notification) => {
            let outcome = n.deliverer.deliver(sink, &notification).await;
            let now = Timestamp::now();
            match outcome {
                Outcome::Delivered { .. } => DeliveryResult::Delivered,
                Outcome::Failed { reason } => DeliveryResult::Failed { error: reason },
                Outcome::Retry { after, reason } => {
                    let first = c.first_attempt_at.unwrap_or(now);
                    let age = Duration::from_millis(
                        u64::try_from(now.unix_millis() - first.unix_millis()).unwrap_or(0),
                    );
                    if aims_notify::is_dead(age, n.settings.max_age()) {
                        DeliveryResult::Dead { error: reason }
                    } else {
                        let wait = aims_notify::next_attempt(c.attempts.saturating_add(1), after);
                        DeliveryResult::Retry {
                            next_at: later(now, i64::try_from(wait.as_secs()).unwrap_or(3600)),
                            error: reason,
                        }
                    }
                }
            }
        }
    };
    match &result {
        DeliveryResult::Delivered => tracing::info!(
            sink = %c.sink, event = %c.event.event, delivery = %c.delivery, "notification delivered"
        ),
        DeliveryResult::Retry { next_at, error } => tracing::warn!(
            sink = %c.sink, event = %c.event.event, delivery = %c.delivery, %next_at, %error,
            "notification not delivered; will retry"
        ),
        DeliveryResult::Failed { error } | DeliveryResult::Dead { error } => tracing::warn!(
            sink = %c.sink, event = %c.event.event, delivery = %c.delivery, %error,
            "notification given up"
        ),
    }
    state
        .store
        .finish_delivery(c.event.seq, &c.sink, &result, Timestamp::now())
        .await
}
