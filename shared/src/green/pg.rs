//! A cooperative PostgreSQL client for may coroutines: the wire format is `postgres-protocol`'s,
//! the socket is `may::net::TcpStream`, so every wait (connect, write, read) parks the
//! coroutine and lets the worker thread run others. Never the sync `postgres` crate here: it
//! would block the OS thread and every coroutine on it (gevent without psycogreen).
//!
//! What it does, and no more: startup with `application_name`; trust, cleartext, MD5 and
//! SCRAM-SHA-256 authentication; the two statements parsed once per connection; per query one
//! Bind/Execute/Sync round trip with binary parameters and results; ErrorResponse mapped to
//! [`AppError`]. No TLS, no notifications, no COPY.
//!
//! The pool of these connections, where a request waits its turn, is in `wait/green.rs`.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use may::net::TcpStream;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::{backend, frontend};
use postgres_protocol::{authentication, types, IsNull, Oid};

use crate::error::{one_line, AppError};
use crate::{sql, Config, DbRow};

const INT4_OID: Oid = 23;
const FLOAT8_OID: Oid = 701;
const SELECT_ROW: &str = "select_row";
const SELECT_ROW_AFTER_SLEEP: &str = "select_row_after_sleep";

/// How to reach and log in to the database.
#[derive(Clone, Debug)]
pub struct ConnectParams {
    pub addr: SocketAddr,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub application_name: String,
    pub connect_timeout: Duration,
}

impl ConnectParams {
    /// From the contract's configuration; the address is resolved here, at start-up, so that
    /// no coroutine ever waits on a DNS lookup (a blocking call).
    pub fn from_config(config: &Config) -> Result<ConnectParams, String> {
        let db = &config.database;
        Ok(ConnectParams {
            addr: db.socket_addr()?,
            user: db.user.clone(),
            password: db.password.clone(),
            dbname: db.dbname.clone(),
            application_name: sql::application_name(config.binary).to_string(),
            connect_timeout: config.pool_timeout.max(Duration::from_millis(100)),
        })
    }
}

/// Why a query failed.
#[derive(Debug)]
pub enum PgError {
    /// The socket failed or closed: the connection is gone.
    Io(io::Error),
    /// The server answered ErrorResponse; the connection is still usable.
    Server {
        severity: String,
        code: String,
        message: String,
    },
    /// Authentication or an answer we cannot read.
    Protocol(String),
}

impl PgError {
    /// Whether the connection it came from must be dropped.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, PgError::Server { .. })
    }

    pub fn into_app_error(self) -> AppError {
        match self {
            PgError::Io(e) if crate::error::is_out_of_descriptors(&e) => {
                AppError::OutOfDescriptors("a database connection".into())
            }
            PgError::Io(e) => AppError::DbUnavailable(one_line(e)),
            PgError::Server {
                severity,
                code,
                message,
            } => AppError::DbError(one_line(format!("{severity} {code}: {message}"))),
            PgError::Protocol(message) => AppError::DbUnavailable(one_line(message)),
        }
    }
}

impl From<io::Error> for PgError {
    fn from(e: io::Error) -> PgError {
        PgError::Io(e)
    }
}

fn server_error(body: &backend::ErrorResponseBody) -> PgError {
    let (mut severity, mut code, mut message) = (String::new(), String::new(), String::new());
    let mut fields = body.fields();
    while let Ok(Some(field)) = fields.next() {
        match field.type_() {
            b'S' => severity = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            b'C' => code = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            _ => {}
        }
    }
    PgError::Server {
        severity,
        code,
        message,
    }
}

/// One session, with both statements prepared.
pub struct Connection {
    stream: TcpStream,
    read: BytesMut,
    write: BytesMut,
}

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 8192;

impl Connection {
    pub fn connect(params: &ConnectParams) -> Result<Connection, PgError> {
        let stream =
            TcpStream::connect_timeout(&params.addr, params.connect_timeout).map_err(|e| {
                PgError::Io(io::Error::new(
                    e.kind(),
                    format!("cannot connect to PostgreSQL at {}: {e}", params.addr),
                ))
            })?;
        let _ = stream.set_nodelay(true);
        let mut conn = Connection {
            stream,
            read: BytesMut::with_capacity(8192),
            write: BytesMut::with_capacity(1024),
        };
        frontend::startup_message(
            [
                ("user", params.user.as_str()),
                ("database", params.dbname.as_str()),
                ("application_name", params.application_name.as_str()),
                ("client_encoding", "UTF8"),
            ],
            &mut conn.write,
        )?;
        conn.flush()?;
        conn.authenticate(params)?;
        conn.wait_ready()?;
        frontend::parse(SELECT_ROW, sql::SELECT_ROW, [INT4_OID], &mut conn.write)?;
        frontend::parse(
            SELECT_ROW_AFTER_SLEEP,
            sql::SELECT_ROW_AFTER_SLEEP,
            [INT4_OID, FLOAT8_OID],
            &mut conn.write,
        )?;
        frontend::sync(&mut conn.write);
        conn.flush()?;
        conn.wait_ready()?;
        Ok(conn)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.write)?;
        self.write.clear();
        Ok(())
    }

    fn next_message(&mut self) -> Result<backend::Message, PgError> {
        loop {
            if let Some(message) = backend::Message::parse(&mut self.read)? {
                return Ok(message);
            }
            // Straight into the heap buffer: a chunk on the coroutine's stack would leave its
            // pages resident for as long as the connection that made the query stays open.
            let start = self.read.len();
            self.read.resize(start + READ_CHUNK, 0);
            let read = self.stream.read(&mut self.read[start..]);
            self.read.truncate(start + read.as_ref().map_or(0, |n| *n));
            let n = read?;
            if n == 0 {
                return Err(PgError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "PostgreSQL closed the connection",
                )));
            }
        }
    }

    fn authenticate(&mut self, params: &ConnectParams) -> Result<(), PgError> {
        let password = || {
            params.password.as_deref().ok_or_else(|| {
                PgError::Protocol(format!(
                    "PostgreSQL asks for a password for user {:?}; put it in the database URL",
                    params.user
                ))
            })
        };
        let mut scram: Option<ScramSha256> = None;
        loop {
            match self.next_message()? {
                backend::Message::AuthenticationOk => return Ok(()),
                backend::Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password()?.as_bytes(), &mut self.write)?;
                    self.flush()?;
                }
                backend::Message::AuthenticationMd5Password(body) => {
                    let hash = authentication::md5_hash(
                        params.user.as_bytes(),
                        password()?.as_bytes(),
                        body.salt(),
                    );
                    frontend::password_message(hash.as_bytes(), &mut self.write)?;
                    self.flush()?;
                }
                backend::Message::AuthenticationSasl(body) => {
                    let mut offers_scram = false;
                    let mut mechanisms = body.mechanisms();
                    while let Some(mechanism) = mechanisms.next()? {
                        offers_scram |= mechanism == "SCRAM-SHA-256";
                    }
                    if !offers_scram {
                        return Err(PgError::Protocol(
                            "PostgreSQL offers no SASL mechanism this client knows (SCRAM-SHA-256)"
                                .into(),
                        ));
                    }
                    let state =
                        ScramSha256::new(password()?.as_bytes(), ChannelBinding::unsupported());
                    frontend::sasl_initial_response("SCRAM-SHA-256", state.message(), &mut self.write)?;
                    self.flush()?;
                    scram = Some(state);
                }
                backend::Message::AuthenticationSaslContinue(body) => {
                    let state = scram
                        .as_mut()
                        .ok_or_else(|| PgError::Protocol("SASL continue before start".into()))?;
                    state.update(body.data())?;
                    frontend::sasl_response(state.message(), &mut self.write)?;
                    self.flush()?;
                }
                backend::Message::AuthenticationSaslFinal(body) => {
                    let state = scram
                        .as_mut()
                        .ok_or_else(|| PgError::Protocol("SASL final before start".into()))?;
                    state.finish(body.data())?;
                }
                backend::Message::ErrorResponse(body) => {
                    return Err(match server_error(&body) {
                        PgError::Server { code, message, .. } => PgError::Protocol(format!(
                            "PostgreSQL refused the connection: {code}: {message}"
                        )),
                        other => other,
                    })
                }
                _ => {
                    return Err(PgError::Protocol(
                        "PostgreSQL asked for an authentication method this client lacks (trust, password, md5 and scram-sha-256 are supported)".into(),
                    ))
                }
            }
        }
    }

    /// Reads up to ReadyForQuery; the first ErrorResponse on the way is the result.
    fn wait_ready(&mut self) -> Result<(), PgError> {
        let mut error = None;
        loop {
            match self.next_message()? {
                backend::Message::ReadyForQuery(_) => return error.map_or(Ok(()), Err),
                backend::Message::ErrorResponse(body) => {
                    error.get_or_insert(server_error(&body));
                }
                _ => {}
            }
        }
    }

    /// Row `id` after `delay_ms` of `pg_sleep`, in one round trip.
    pub fn fetch_row(&mut self, id: i32, delay_ms: u32) -> Result<Option<DbRow>, PgError> {
        let statement = if delay_ms == 0 {
            SELECT_ROW
        } else {
            SELECT_ROW_AFTER_SLEEP
        };
        let seconds = sql::sleep_seconds(delay_ms);
        let values: &[Param] = if delay_ms == 0 {
            &[Param::Int4(id)]
        } else {
            &[Param::Int4(id), Param::Float8(seconds)]
        };
        frontend::bind(
            "",
            statement,
            [1],
            values.iter().copied(),
            |value, buf| {
                match value {
                    Param::Int4(v) => types::int4_to_sql(v, buf),
                    Param::Float8(v) => types::float8_to_sql(v, buf),
                }
                Ok(IsNull::No)
            },
            [1],
            &mut self.write,
        )
        .map_err(|_| PgError::Protocol("cannot encode the parameters".into()))?;
        frontend::execute("", 0, &mut self.write)?;
        frontend::sync(&mut self.write);
        self.flush()?;

        let mut row = None;
        let mut error = None;
        loop {
            match self.next_message()? {
                backend::Message::DataRow(body) if error.is_none() => match decode_row(&body) {
                    Ok(decoded) => row = Some(decoded),
                    Err(e) => error = Some(e),
                },
                backend::Message::ErrorResponse(body) => {
                    error.get_or_insert(server_error(&body));
                }
                backend::Message::ReadyForQuery(_) => {
                    return match error {
                        Some(e) => Err(e),
                        None => Ok(row),
                    };
                }
                _ => {}
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Param {
    Int4(i32),
    Float8(f64),
}

fn decode_row(body: &backend::DataRowBody) -> Result<DbRow, PgError> {
    let bad = |what: &str| PgError::Protocol(format!("unexpected row from PostgreSQL: {what}"));
    let mut ranges = body.ranges();
    let a = ranges
        .next()
        .map_err(|_| bad("columns"))?
        .flatten()
        .ok_or_else(|| bad("a is missing"))?;
    let b = ranges
        .next()
        .map_err(|_| bad("columns"))?
        .flatten()
        .ok_or_else(|| bad("b is missing"))?;
    let buffer = body.buffer();
    Ok(DbRow {
        a: types::int4_from_sql(&buffer[a]).map_err(|_| bad("a is not int4"))?,
        b: types::text_from_sql(&buffer[b])
            .map_err(|_| bad("b is not text"))?
            .to_string(),
    })
}
