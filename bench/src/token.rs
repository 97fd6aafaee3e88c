//! The token of a status endpoint (`remote`): it hands out the stack's database URL, so nobody gets
//! anything from it without the token, wherever it listens (other users of a shared machine
//! reach loopback too). The host makes one at start, from the kernel's random source, or reads
//! it from a file, and prints the URL with the token in its user part,
//! `http://TOKEN@HOST:PORT/stack.json`; a client takes such a URL and sends
//! `Authorization: Bearer TOKEN`.

use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};

/// The fewest characters a token read from a file may have.
const SHORTEST: usize = 16;

#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// 24 bytes from the kernel's random source, as 48 hex digits.
    pub fn generate() -> Result<Token> {
        let mut bytes = [0u8; 24];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut random| random.read_exact(&mut bytes))
            .context("cannot read /dev/urandom for the status endpoint's token")?;
        Ok(Token(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// A token as given: at least 16 characters, each a letter, a digit or one of `-._~` (so
    /// that it stands in a URL's user part as it is).
    pub fn parse(text: &str) -> Result<Token, String> {
        if text.chars().count() < SHORTEST {
            return Err(format!("a token needs at least {SHORTEST} characters"));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
        {
            return Err(format!(
                "{bad:?} cannot be in a token: use letters, digits and -._~"
            ));
        }
        Ok(Token(text.to_string()))
    }

    /// The first line of a file.
    pub fn from_file(path: &Path) -> Result<Token, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Token::parse(text.lines().next().unwrap_or("").trim())
            .map_err(|why| format!("{}: {why}", path.display()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether an `Authorization` header's value carries this token, compared in a time that
    /// does not depend on where the two differ.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(|value| value.trim().strip_prefix("Bearer "))
        else {
            return false;
        };
        let (given, ours) = (given.trim().as_bytes(), self.0.as_bytes());
        given.len() == ours.len()
            && given
                .iter()
                .zip(ours)
                .fold(0u8, |differ, (a, b)| differ | (a ^ b))
                == 0
    }
}

/// The token is never printed by accident (a log, an error, results.json).
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

/// `http://TOKEN@HOST:PORT/…` split into the token and the URL without it.
pub fn split_url(url: &str) -> (Option<Token>, String) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (None, url.to_string());
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        // Taken as given, even when malformed: the endpoint then refuses it (401).
        Some((user, _)) => (
            Some(Token(user.to_string())),
            format!("{scheme}://{}", &rest[user.len() + 1..]),
        ),
        None => (None, url.to_string()),
    }
}

/// A status endpoint as a client reaches it: its address and token. Shown as the address
/// alone.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusEndpoint {
    pub addr: SocketAddr,
    pub token: Option<Token>,
}

impl fmt::Display for StatusEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_48_hex_digits_and_new_each_time() {
        let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
        assert_eq!(a.as_str().len(), 48);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "Token(…)");
    }

    #[test]
    fn only_the_bearer_of_the_same_token_is_admitted() {
        let token = Token::parse("abcdefghijklmnop").unwrap();
        assert!(token.admits(Some("Bearer abcdefghijklmnop")));
        assert!(!token.admits(None));
        assert!(!token.admits(Some("abcdefghijklmnop")));
        assert!(!token.admits(Some("Bearer abcdefghijklmno")));
        assert!(!token.admits(Some("Bearer abcdefghijklmnopq")));
        assert!(!token.admits(Some("Bearer abcdefghijklmnoq")));
        assert!(!token.admits(Some("Basic abcdefghijklmnop")));
    }

    #[test]
    fn a_token_is_long_and_fits_a_urls_user_part() {
        assert!(Token::parse("short").unwrap_err().contains("16"));
        assert!(Token::parse("abcdefghijklmnop:")
            .unwrap_err()
            .contains("':'"));
        assert!(Token::parse("abcdefghijklmnop@").is_err());
        assert!(Token::parse("A-b.c_d~0123456789").is_ok());
    }

    #[test]
    fn a_url_gives_up_its_token() {
        let (token, url) = split_url("http://abcdefghijklmnop@10.0.0.5:8099/stack.json");
        assert_eq!(token.unwrap().as_str(), "abcdefghijklmnop");
        assert_eq!(url, "http://10.0.0.5:8099/stack.json");
        let (token, url) = split_url("http://10.0.0.5:8099/stack.json");
        assert!(token.is_none());
        assert_eq!(url, "http://10.0.0.5:8099/stack.json");
        let (token, url) = split_url("stack.json");
        assert!(token.is_none());
        assert_eq!(url, "stack.json");
    }
}
