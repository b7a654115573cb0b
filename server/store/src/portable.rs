//! Code written once for both backends. SQLite and PostgreSQL agree on most of the SQL this crate
//! runs once parameters are numbered (`$1`, which sqlx passes to SQLite as `?1`), and sqlx gives
//! both the same query API; only the pool and connection types differ. [`portable!`] compiles
//! one body twice, as `sqlite` and `postgres` modules, in which:
//!
//! - `S` is the store (`SqliteStore`, `PgStore`), `Conn` its connection type;
//! - `s.reader()` is the pool reads go to, `s.writer().await` what writes go through (SQLite's
//!   single write connection, held while the guard lives; PostgreSQL's pool);
//! - `backend` is the backend's own module (`crate::sqlite`, `crate::postgres`), for the few
//!   operations whose SQL differs (the append lock, batched inserts, dialect functions).
//!
//! Each `Store` trait is implemented once this way, in the module of its concern
//! (`ledger_store.rs`, `status.rs`, `access.rs`, `outbox.rs`); a backend module provides the
//! functions those bodies call through `backend`.

/// Compiles `$body` once per backend (see the module docs for what it may use).
macro_rules! portable {
    ($($body:tt)*) => {
        /// The SQLite build of the portable code.
        pub(crate) mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use crate::sqlite as backend;
            #[allow(dead_code)]
            type S = crate::SqliteStore;
            #[allow(dead_code)]
            type Conn = sqlx::SqliteConnection;
            $($body)*
        }

        /// The PostgreSQL build of the portable code.
        pub(crate) mod postgres {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use crate::postgres as backend;
            #[allow(dead_code)]
            type S = crate::PgStore;
            #[allow(dead_code)]
            type Conn = sqlx::PgConnection;
            $($body)*
        }
    };
}

pub(crate) use portable;
