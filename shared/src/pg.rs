//! What the `postgres` and `tokio-postgres` drivers share: connection settings and the mapping
//! of their errors to the contract's status codes. (`postgres` is a blocking wrapper around
//! `tokio-postgres`, so the two drivers have one error type.)

use tokio_postgres::error::SqlState;

use crate::error::{one_line, with_causes, AppError};
use crate::{sql, Config, DbRow};

/// Connection settings for either driver, from `--database-url`, with `application_name` set to
/// the binary's name.
pub fn driver_config(config: &Config) -> tokio_postgres::Config {
    let db = &config.database;
    let mut pg = tokio_postgres::Config::new();
    pg.host(&db.host)
        .port(db.port)
        .user(&db.user)
        .dbname(&db.dbname)
        .application_name(sql::application_name(config.binary))
        .connect_timeout(config.pool_timeout);
    if let Some(password) = &db.password {
        pg.password(password);
    }
    pg
}

/// Whether `error` ended the connection, so that the statement never ran to its end and
/// the next connection may be tried: the client is closed (`client_closed`), or the error says
/// so, or the server said FATAL (57P01 when its backend was terminated). The FATAL can reach
/// the statement before the driver has seen the socket close, so `is_closed` alone would
/// answer too early.
pub fn connection_ended(client_closed: bool, error: &tokio_postgres::Error) -> bool {
    client_closed
        || error.is_closed()
        || error
            .as_db_error()
            .is_some_and(|db| db.severity() == "FATAL")
}

/// The row of either statement, as the contract's [`DbRow`].
pub fn to_row(row: &tokio_postgres::Row) -> Result<DbRow, AppError> {
    Ok(DbRow {
        a: row.try_get(0).map_err(|e| AppError::DbError(one_line(e)))?,
        b: row.try_get(1).map_err(|e| AppError::DbError(one_line(e)))?,
    })
}

/// Maps a driver error: a broken or refused connection, or a server shutting down, is 503
/// (the pool replaces the connection); any other server error is 500.
pub fn map_error(error: &tokio_postgres::Error) -> AppError {
    let Some(db_error) = error.as_db_error() else {
        if crate::error::out_of_descriptors_in(error) {
            return AppError::OutOfDescriptors("a database connection".into());
        }
        return AppError::DbUnavailable(one_line(with_causes(error)));
    };
    let message = one_line(format!(
        "{} {}: {}",
        db_error.severity(),
        db_error.code().code(),
        db_error.message()
    ));
    let code = db_error.code();
    let connection_class = code.code().starts_with("08") || code.code().starts_with("57");
    if connection_class || *code == SqlState::TOO_MANY_CONNECTIONS {
        AppError::DbUnavailable(message)
    } else {
        AppError::DbError(message)
    }
}

/// An open connection with both statements prepared on it: a pipelined connection of the
/// tokio targets, and compio-tpc's sessions.
#[cfg(any(feature = "tokio", feature = "compio"))]
pub struct Prepared {
    pub client: tokio_postgres::Client,
    select_row: tokio_postgres::Statement,
    select_row_after_sleep: tokio_postgres::Statement,
}

#[cfg(any(feature = "tokio", feature = "compio"))]
impl Prepared {
    /// Prepares both statements on `client` (sent together: one round trip).
    pub async fn on(client: tokio_postgres::Client) -> Result<Prepared, tokio_postgres::Error> {
        let (select_row, select_row_after_sleep) = tokio::try_join!(
            client.prepare(sql::SELECT_ROW),
            client.prepare(sql::SELECT_ROW_AFTER_SLEEP)
        )?;
        Ok(Prepared {
            client,
            select_row,
            select_row_after_sleep,
        })
    }

    /// One row, with `delay_ms` of `pg_sleep` in the same statement.
    pub async fn query(
        &self,
        id: i32,
        delay_ms: u32,
    ) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
        if delay_ms == 0 {
            self.client.query_opt(&self.select_row, &[&id]).await
        } else {
            let seconds = sql::sleep_seconds(delay_ms);
            let statement = &self.select_row_after_sleep;
            self.client.query_opt(statement, &[&id, &seconds]).await
        }
    }
}
