//! Decoding of the JSON the stores keep for the materialised assessment, shared by both backends
//! so they answer identically.

use aims_model::Finding;
use aims_model::wire::ControlView;

use aims_model::Timestamp;

use crate::{Role, StoreError, TokenInfo, TokenScope};

/// A `tokens` row as both stores select it: name, role, expires_at, revoked_at, agent_id, sources.
pub(crate) type TokenRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Decodes a [`TokenRow`].
pub(crate) fn token_info(row: TokenRow) -> Result<TokenInfo, StoreError> {
    let (name, role, expires_at, revoked_at, agent_id, sources) = row;
    let time = |t: Option<String>| {
        t.as_deref()
            .map(|s| Timestamp::parse_utc(s).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    };
    Ok(TokenInfo {
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role}")))?,
        name,
        expires_at: time(expires_at)?,
        revoked_at: time(revoked_at)?,
        scope: token_scope(agent_id, sources)?,
    })
}

/// The `sources` column of a token scope: a JSON array, or NULL for any source.
pub(crate) fn scope_sources(scope: &TokenScope) -> Result<Option<String>, StoreError> {
    Ok(scope
        .sources
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?)
}

/// A token scope from its `agent_id` and `sources` columns.
pub(crate) fn token_scope(
    agent_id: Option<String>,
    sources: Option<String>,
) -> Result<TokenScope, StoreError> {
    Ok(TokenScope {
        agent_id,
        sources: sources.as_deref().map(serde_json::from_str).transpose()?,
    })
}

/// Decodes stored control views and orders them by control ID (numerically: `A.6.2.10` after
/// `A.6.2.9`, `A.10.2` after `A.9.4`).
pub(crate) fn control_views(rows: &[String]) -> Result<Vec<ControlView>, StoreError> {
    let mut views = rows
        .iter()
        .map(|v| serde_json::from_str(v))
        .collect::<Result<Vec<ControlView>, _>>()?;
    views.sort_by_key(|v| control_order(&v.control));
    Ok(views)
}

/// Decodes stored findings, keeping the order of the rows.
pub(crate) fn findings(rows: &[String]) -> Result<Vec<Finding>, StoreError> {
    Ok(rows
        .iter()
        .map(|b| serde_json::from_str(b))
        .collect::<Result<_, _>>()?)
}

/// Sort key of a control ID.
fn control_order(id: &str) -> Vec<u32> {
    id.trim_start_matches("A.")
        .split('.')
        .map(|p| p.parse().unwrap_or(u32::MAX))
        .collect()
}
