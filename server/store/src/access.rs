//! [`AccessStore`] for both backends (see [`crate::portable`]): API tokens with their scope
//! (agent, sources, and since issue 18 M4 systems) and dashboard sessions (issue 18 M8).
//!
//! A session is a random id a browser got in exchange for a read-capable token; only its SHA-256
//! is stored, with the token's hash, name and role, creation and expiry. Lookups join the token's
//! current row, so a revoked or expired token ends its sessions immediately; `revoked_at` on the
//! session records an explicit revocation by token name. Expired sessions are deleted whenever a
//! new one is created, so the table holds at most the sessions of the last session lifetime.
//!
//! Writes on SQLite go through the store's single write connection like every other write.

use aims_model::Timestamp;
use async_trait::async_trait;

use crate::decode::{self, SCOPED_TOKEN_COLUMNS, ScopedTokenRow, opt_ts, ts};
use crate::portable::portable;
use crate::{AccessStore, NewSession, NewToken, SessionInfo, StoreError, TokenInfo};

/// A session row joined with its token: created_at, expires_at, revoked_at, then the token's
/// [`ScopedTokenRow`] columns.
type SessionRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn session_info(row: SessionRow) -> Result<SessionInfo, StoreError> {
    let (created, expires, revoked, name, role, t_exp, t_rev, agent_id, sources, systems) = row;
    let token: TokenInfo =
        decode::scoped_token_info((name, role, t_exp, t_rev, agent_id, sources, systems))?;
    Ok(SessionInfo {
        created_at: ts(&created)?,
        expires_at: ts(&expires)?,
        revoked_at: opt_ts(revoked.as_deref())?,
        token,
    })
}

fn session_select() -> String {
    format!(
        "SELECT s.created_at, s.expires_at, s.revoked_at, {SCOPED_TOKEN_COLUMNS} \
         FROM sessions s JOIN tokens t ON t.token_hash = s.token_hash WHERE s.id_hash = $1"
    )
}

fn token_select() -> String {
    format!("SELECT {SCOPED_TOKEN_COLUMNS} FROM tokens t WHERE t.token_hash = $1")
}

portable! {
    #[async_trait]
    impl AccessStore for S {
        async fn create_token(&self, t: &NewToken) -> Result<(), StoreError> {
            let w = self.writer().await;
            sqlx::query(
                "INSERT INTO tokens \
                 (name, role, token_hash, created_at, expires_at, agent_id, sources, systems) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&t.name)
            .bind(t.role.as_str())
            .bind(&t.token_hash)
            .bind(t.created_at.to_string())
            .bind(t.expires_at.map(|e| e.to_string()))
            .bind(&t.scope.agent_id)
            .bind(decode::scope_sources(&t.scope)?)
            .bind(decode::scope_systems(&t.scope)?)
            .execute(&*w)
            .await?;
            Ok(())
        }

        async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenInfo>, StoreError> {
            let row: Option<ScopedTokenRow> = sqlx::query_as(&token_select())
                .bind(token_hash)
                .fetch_optional(self.reader())
                .await?;
            row.map(decode::scoped_token_info).transpose()
        }

        async fn revoke_tokens(&self, name: &str, at: Timestamp) -> Result<u64, StoreError> {
            let w = self.writer().await;
            let r = sqlx::query(
                "UPDATE tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
            )
            .bind(at.to_string())
            .bind(name)
            .execute(&*w)
            .await?;
            Ok(r.rows_affected())
        }

        async fn create_session(&self, n: &NewSession) -> Result<(), StoreError> {
            let w = self.writer().await;
            let mut tx = w.begin().await?;
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(n.created_at.to_string())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO sessions \
                 (id_hash, token_hash, token_name, role, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&n.id_hash)
            .bind(&n.token_hash)
            .bind(&n.token_name)
            .bind(n.role.as_str())
            .bind(n.created_at.to_string())
            .bind(n.expires_at.to_string())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn session_by_hash(&self, id_hash: &str) -> Result<Option<SessionInfo>, StoreError> {
            let row: Option<SessionRow> = sqlx::query_as(&session_select())
                .bind(id_hash)
                .fetch_optional(self.reader())
                .await?;
            row.map(session_info).transpose()
        }

        async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
            let w = self.writer().await;
            let r = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(&*w)
                .await?;
            Ok(r.rows_affected() > 0)
        }

        async fn revoke_sessions(&self, token_name: &str, at: Timestamp) -> Result<u64, StoreError> {
            let w = self.writer().await;
            let r = sqlx::query(
                "UPDATE sessions SET revoked_at = $1 WHERE token_name = $2 AND revoked_at IS NULL",
            )
            .bind(at.to_string())
            .bind(token_name)
            .execute(&*w)
            .await?;
            Ok(r.rows_affected())
        }
    }
}
