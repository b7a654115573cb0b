//! The database a server uses, parsed once from its URL (`sqlite://PATH`, `sqlite:PATH`,
//! `postgres://…`, `postgresql://…`) instead of checked by prefix wherever it matters.

use std::path::{Path, PathBuf};

use crate::StoreError;

/// A parsed database URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// The embedded default: a SQLite file (the URL as given, and the file's path).
    Sqlite {
        /// The URL as given (options such as `?mode=` kept).
        url: String,
        /// The database file (`:memory:` for an in-memory database).
        path: PathBuf,
    },
    /// PostgreSQL (several server replicas may share it).
    Postgres {
        /// The URL as given.
        url: String,
    },
}

impl DatabaseUrl {
    /// Parses `url`; anything but SQLite or PostgreSQL is an error naming both forms.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or(rest);
            if path.is_empty() {
                return Err(StoreError::Url {
                    url: url.to_owned(),
                    reason: "no database file after sqlite://".to_owned(),
                });
            }
            return Ok(Self::Sqlite {
                url: url.to_owned(),
                path: PathBuf::from(path),
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres {
                url: url.to_owned(),
            });
        }
        Err(StoreError::Url {
            url: crate::redact_url(url),
            reason: "expected sqlite://PATH or postgres://USER@HOST/DB".to_owned(),
        })
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url } => url,
        }
    }

    /// The SQLite database file, if this is SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite { path, .. } => Some(path),
            Self::Postgres { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() -> Result<(), StoreError> {
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/aims/aims.db?mode=rwc")?.sqlite_path(),
            Some(Path::new("/var/lib/aims/aims.db"))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:aims.db")?.sqlite_path(),
            Some(Path::new("aims.db"))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db")?,
            DatabaseUrl::Postgres { .. }
        ));
        for bad in ["mysql://x", "sqlite://", "aims.db", ""] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad}");
        }
        let e = DatabaseUrl::parse("mysql://u:secret@h/db")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!e.contains("secret"), "{e}");
        Ok(())
    }
}
