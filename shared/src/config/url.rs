//! The URLs a target is given: the database's (`postgres://`) and the upstream page's
//! (`http://`), parsed with the `url` crate and resolved at start-up.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// concurrency models on loopback, and every client in it speaks the same plain protocol.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
}

impl DatabaseUrl {
    /// Parses `postgres://user[:password]@host[:port][/dbname][?sslmode=disable]` with the
    /// `url` crate (percent-escapes in the user, password and database name are decoded).
    pub fn parse(input: &str) -> Result<DatabaseUrl, String> {
        const FORM: &str = "expected postgres://user@host:port/dbname";
        let url = url::Url::parse(input).map_err(|e| format!("{e}; {FORM}"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(FORM.into());
        }
        for (key, value) in url.query_pairs() {
            if !(key == "sslmode" && matches!(value.as_ref(), "disable" | "prefer" | "allow")) {
                return Err(format!(
                    "unsupported URL parameter \"{key}={value}\" (only sslmode=disable|prefer|allow: the suite connects without TLS)"
                ));
            }
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(addr)) => addr.to_string(),
            Some(host) => host.to_string(),
            None => String::new(),
        };
        if host.is_empty() {
            return Err("the host is empty".into());
        }
        let port = match url.port() {
            Some(0) => return Err("bad port 0".into()),
            Some(port) => port,
            None => 5432,
        };
        let user = match decode(url.username())? {
            user if user.is_empty() => "postgres".to_string(),
            user => user,
        };
        let password = url.password().map(decode).transpose()?;
        let dbname = match decode(url.path().trim_start_matches('/'))? {
            name if name.is_empty() => user.clone(),
            name => name,
        };
        Ok(DatabaseUrl {
            host,
            port,
            user,
            password,
            dbname,
        })
    }

    /// Resolves the host once, at start-up, so that no client resolves names on a request path.
    pub fn socket_addr(&self) -> Result<SocketAddr, String> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", self.host))
    }
}

/// Shows the URL with the password masked, for logs.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = if self.password.is_some() { ":***" } else { "" };
        let host = bracket_ipv6(&self.host);
        write!(
            f,
            "postgres://{}{password}@{host}:{}/{}",
            self.user, self.port, self.dbname
        )
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A parsed `http://` URL for the upstream page. Its address is resolved at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamUrl {
    /// The `Host` header value.
    pub authority: String,
    pub addr: SocketAddr,
    /// Path and any query, to which `delay_ms=N` is appended.
    pub path_and_query: String,
}

impl UpstreamUrl {
    /// Parses `http://host[:port][/path][?query]` with the `url` crate, and resolves the host.
    pub fn parse(input: &str) -> Result<UpstreamUrl, String> {
        const FORM: &str = "expected http://host[:port]/path (https is not supported)";
        let url = url::Url::parse(input).map_err(|e| format!("{e}; {FORM}"))?;
        if url.scheme() != "http" {
            return Err(FORM.into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("user information in the upstream URL is not supported".into());
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or(FORM)?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let path_and_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let addr = url
            .socket_addrs(|| Some(80))
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .into_iter()
            .next()
            .ok_or_else(|| format!("{host} resolves to no address"))?;
        Ok(UpstreamUrl {
            authority,
            addr,
            path_and_query,
        })
    }

    /// The request target for one fetch with the given delay.
    pub fn target(&self, delay_ms: u32) -> String {
        let sep = if self.path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}delay_ms={delay_ms}", self.path_and_query)
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path_and_query)
    }
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Decodes the `%XX` escapes of a URL part, as user names, passwords and query values carry
/// them.
pub fn decode(part: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| format!("{part:?} does not decode to UTF-8"))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_parse_with_defaults_and_escapes() {
        let url = DatabaseUrl::parse("postgres://bench:p%40ss@db.example:6543/perf").unwrap();
        assert_eq!(url.user, "bench");
        assert_eq!(url.password.as_deref(), Some("p@ss"));
        assert_eq!((url.host.as_str(), url.port), ("db.example", 6543));
        assert_eq!(url.dbname, "perf");
        assert_eq!(url.to_string(), "postgres://bench:***@db.example:6543/perf");

        let url = DatabaseUrl::parse("postgresql://alice@[::1]").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 5432));
        assert_eq!(url.dbname, "alice");

        assert!(DatabaseUrl::parse("postgres://u@h/db?sslmode=disable").is_ok());
        assert!(DatabaseUrl::parse("postgres://u@h/db?sslmode=require").is_err());
        assert!(DatabaseUrl::parse("postgres://u@h:99999/db").is_err());
        assert!(DatabaseUrl::parse("postgres://u@:5432/db").is_err());
    }

    #[test]
    fn upstream_urls_keep_their_query_and_append_the_delay() {
        let url = UpstreamUrl::parse("http://127.0.0.1:8090/page?x=1").unwrap();
        assert_eq!(url.target(100), "/page?x=1&delay_ms=100");
        assert_eq!(url.authority, "127.0.0.1:8090");
        assert!(UpstreamUrl::parse("https://127.0.0.1/").is_err());
        assert!(UpstreamUrl::parse("http://u:p@127.0.0.1/").is_err());
        let url = UpstreamUrl::parse("http://127.0.0.1").unwrap();
        assert_eq!(url.addr.port(), 80);
        assert_eq!(url.target(1), "/?delay_ms=1");
    }
}
