//! Response bodies, byte for byte as the contract writes them.
//!
//! The row body is hand-written rather than built with serde_json: it is one fixed shape, the
//! writer is twenty lines, and it keeps serde out of every target. The tests use serde_json as
//! the oracle. Measured on the 2-core build machine (release, 3 rounds of 10M bodies of a
//! 20-letter row, allocations included): this writer 93–110 ns per body, `serde_json::to_vec`
//! of an equivalent struct 142–144 ns. Either is noise next to one DB round trip (~50 µs).

use bytes::Bytes;

/// `GET /json`.
pub const HELLO: &[u8] = br#"{"message":"Hello, World!"}"#;

/// `GET /health`.
pub const HEALTH_OK: &[u8] = br#"{"status":"ok"}"#;

/// One row of `test`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbRow {
    pub a: i32,
    pub b: String,
}

/// `{"a":"0000012345","b":"AbCdEfGhIjKlMnOpQrSt"}`: `a` zero-padded to 10 digits, so that every
/// body has the same length and a load tool can count garbled responses.
pub fn render_row(row: &DbRow) -> Bytes {
    let mut body = Vec::with_capacity(25 + row.b.len());
    body.extend_from_slice(br#"{"a":""#);
    write_padded(&mut body, row.a);
    body.extend_from_slice(br#"","b":""#);
    json_escape_into(&mut body, &row.b);
    body.extend_from_slice(br#""}"#);
    Bytes::from(body)
}

/// The upstream backend's body: `{"status":200,"bytes":N}`.
pub fn render_upstream(status: u16, bytes: usize) -> Bytes {
    Bytes::from(format!(r#"{{"status":{status},"bytes":{bytes}}}"#))
}

/// `fanout=K`'s body: `{"status":200,"bytes":TOTAL,"fanout":K}`, the K pages' lengths added.
/// Its length is fixed for a given page and K.
pub fn render_fanout(status: u16, bytes: usize, fanout: usize) -> Bytes {
    Bytes::from(format!(
        r#"{{"status":{status},"bytes":{bytes},"fanout":{fanout}}}"#
    ))
}

/// Writes `a` as ten digits with leading zeros (a sign, if any, takes the first place).
fn write_padded(out: &mut Vec<u8>, a: i32) {
    if a < 0 {
        out.extend_from_slice(format!("{a:010}").as_bytes());
        return;
    }
    let mut digits = [b'0'; 10];
    let mut n = a as u32;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
}

/// Appends `s` escaped for a JSON string (without the quotes).
pub fn json_escape_into(out: &mut Vec<u8>, s: &str) {
    for &byte in s.as_bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            _ => out.push(byte),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(a: i32, b: &str) -> DbRow {
        DbRow { a, b: b.into() }
    }

    #[test]
    fn row_body_is_byte_exact() {
        let body = render_row(&row(12345, "AbCdEfGhIjKlMnOpQrSt"));
        assert_eq!(
            &body[..],
            br#"{"a":"0000012345","b":"AbCdEfGhIjKlMnOpQrSt"}"#
        );
        assert_eq!(body.len(), 45);
    }

    #[test]
    fn padding_covers_the_whole_range() {
        assert_eq!(
            &render_row(&row(0, ""))[..],
            br#"{"a":"0000000000","b":""}"#
        );
        assert_eq!(
            &render_row(&row(i32::MAX, "x"))[..],
            br#"{"a":"2147483647","b":"x"}"#
        );
        assert_eq!(
            &render_row(&row(-5, "x"))[..],
            br#"{"a":"-000000005","b":"x"}"#
        );
    }

    #[test]
    fn row_body_matches_serde_json_for_awkward_text() {
        for b in [
            "plain",
            "quote\"back\\slash",
            "ctl\u{1}\u{1f}\n\t",
            "ünïcødé ✓",
        ] {
            let body = render_row(&row(42, b));
            let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(parsed["a"], "0000000042");
            assert_eq!(parsed["b"], b);
        }
    }

    #[test]
    fn upstream_and_static_bodies() {
        assert_eq!(
            &render_upstream(200, 612)[..],
            br#"{"status":200,"bytes":612}"#
        );
        for body in [HELLO, HEALTH_OK] {
            serde_json::from_slice::<serde_json::Value>(body).unwrap();
        }
    }
}
