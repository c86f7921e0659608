//! Opening the shared store: a PostgreSQL every instance of a fleet uses. The pool is
//! lazy, so hookwall starts while the database is down, and a call waits at most
//! [`ACQUIRE_TIMEOUT`] for a connection, so a dead database costs a bounded wait.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::secret::Secret;

/// Connections per instance.
const CONNECTIONS: u32 = 8;
/// How long a call waits for a connection (and a new connection to be made).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// A lazy pool for `url` (which may carry a password: it is never printed).
pub(super) fn open_lazy(url: &Secret) -> Result<PgPool, sqlx::Error> {
    let text = String::from_utf8_lossy(url.expose()).into_owned();
    let options = PgConnectOptions::from_str(&text)?.application_name("hookwall");
    Ok(PgPoolOptions::new()
        .max_connections(CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options))
}
