//! `work=N`: the CPU a request spends of its own, after its row or page is fetched.
//!
//! The computation is SHA-256 chained N times, starting from the body that `work=0` returns:
//! `h1 = SHA-256(body)`, then `h(i+1) = SHA-256(h(i) repeated 32 times)`: each further round
//! hashes 1,024 bytes, the 32 raw bytes of the last digest 32 times over. The answer carries
//! `hN` in lowercase hex. Any language reproduces it with its standard library (Python:
//! `hashlib.sha256(digest * 32)`), and a verifier recomputes it from the body itself, so a
//! server that skips the work is caught. One unit, one SHA-256 of 1 KiB, is a fixed amount of
//! CPU (16 compressions), large enough that a language's own overhead per round is small
//! beside it, so that the same N costs about the same in every server; `bench` calibrates it
//! on the machine.
//!
//! Where this runs is the point of the axis: on the thread or task that runs the request,
//! like the rest of the handler (the tokio targets can move it to the blocking pool with
//! `--offload blocking`).

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// The most work a request may ask for.
pub const MAX_WORK: u32 = 100_000;

/// The field a body with work ends with: `,"work":"` + 64 hex digits + `"`.
const FIELD: &[u8] = br#","work":""#;

/// The length a body grows by when it carries a result: `,"work":"<64 hex>"`.
pub const FIELD_LEN: usize = FIELD.len() + 64 + 1;

/// The bytes each round after the first hashes: the last digest, repeated.
pub const ROUND_BYTES: usize = 1024;

/// SHA-256 chained `n` times from `body` (`n` ≥ 1): the body, then the last digest repeated
/// to [`ROUND_BYTES`].
pub fn chain(body: &[u8], n: u32) -> [u8; 32] {
    let mut hash: [u8; 32] = Sha256::digest(body).into();
    let mut round = [0u8; ROUND_BYTES];
    for _ in 1..n {
        for part in round.chunks_exact_mut(32) {
            part.copy_from_slice(&hash);
        }
        hash = Sha256::digest(round).into();
    }
    hash
}

/// `body` (a JSON object) with the result of `n` units of work as its last field, or `body`
/// itself when `n` is 0: `{"a":"…","b":"…"}` → `{"a":"…","b":"…","work":"<64 hex>"}`.
pub fn with_work(body: Bytes, n: u32) -> Bytes {
    if n == 0 {
        return body;
    }
    let hash = chain(&body, n);
    let mut out = Vec::with_capacity(body.len() + FIELD_LEN);
    out.extend_from_slice(&body[..body.len().saturating_sub(1)]);
    out.extend_from_slice(FIELD);
    out.extend_from_slice(&hex(&hash));
    out.extend_from_slice(br#""}"#);
    Bytes::from(out)
}

/// Lowercase hex of 32 bytes.
pub fn hex(hash: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, byte) in hash.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(byte >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(byte & 15)];
    }
    out
}

/// What a verifier finds in a body that should carry `n` units of work: `Ok(())` when its
/// last field is the right result for the rest of it, else what is wrong, in one line.
pub fn check(body: &[u8], n: u32) -> Result<(), String> {
    if n == 0 {
        return match find_field(body) {
            Some(_) => Err("work=0 must leave the body as it is, but it has a work field".into()),
            None => Ok(()),
        };
    }
    let Some(start) = find_field(body) else {
        return Err(format!(
            "no \"work\" field at the end of the body (work={n} asks for one): {:?}",
            String::from_utf8_lossy(&body[..body.len().min(120)])
        ));
    };
    let mut base = body[..start].to_vec();
    base.push(b'}');
    let expected = hex(&chain(&base, n));
    let got = &body[start + FIELD.len()..body.len() - 2];
    if got == expected {
        Ok(())
    } else {
        Err(format!(
            "work={n}: the result is {:?}, but SHA-256 chained {n} times from {:?} is {:?}",
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(&base),
            String::from_utf8_lossy(&expected)
        ))
    }
}

/// Where the work field starts, when the body ends with one of the right length.
fn find_field(body: &[u8]) -> Option<usize> {
    let start = body.len().checked_sub(FIELD_LEN + 1)?;
    (body[start..].starts_with(FIELD) && body.ends_with(br#""}"#)).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHON_ABC_3: &[u8; 64] =
        b"6e0ce9230da36df1d7b45a0bc71bf2e88b6a0c5a61cf7486d6eb31c2180768a5";

    #[test]
    fn one_unit_is_the_sha256_of_the_body_and_each_more_hashes_the_last() {
        // FIPS 180-2's "abc" vector, then SHA-256 of those 32 bytes, 32 times over; and the
        // third round as Python computes it
        // (`d = sha256(b"abc").digest(); d = sha256(d * 32).digest(); sha256(d * 32).hexdigest()`).
        assert_eq!(
            &hex(&chain(b"abc", 1)),
            b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let first = chain(b"abc", 1);
        let second: [u8; 32] = Sha256::digest(first.repeat(32)).into();
        assert_eq!(chain(b"abc", 2), second);
        assert_eq!(&hex(&chain(b"abc", 3)), PYTHON_ABC_3);
    }

    #[test]
    fn the_result_is_the_last_field_and_work_0_changes_nothing() {
        let body = Bytes::from_static(br#"{"status":200,"bytes":612}"#);
        assert_eq!(with_work(body.clone(), 0), body);
        let worked = with_work(body.clone(), 3);
        assert_eq!(worked.len(), body.len() + FIELD_LEN);
        let parsed: serde_json::Value = serde_json::from_slice(&worked).unwrap();
        assert_eq!(parsed["status"], 200);
        assert_eq!(parsed["work"].as_str().unwrap().len(), 64);
        assert_eq!(check(&worked, 3), Ok(()));
        assert_eq!(check(&body, 0), Ok(()));
    }

    #[test]
    fn a_skipped_short_or_missing_result_is_caught() {
        let body = Bytes::from_static(br#"{"a":"0000000003","b":"x"}"#);
        let worked = with_work(body.clone(), 10);
        assert!(check(&worked, 11).unwrap_err().contains("work=11"));
        assert!(check(&body, 10).unwrap_err().contains("no \"work\" field"));
        assert!(check(&worked, 0).unwrap_err().contains("work=0"));
        let mut wrong = worked.to_vec();
        let at = wrong.len() - 3;
        wrong[at] = if wrong[at] == b'0' { b'1' } else { b'0' };
        assert!(check(&wrong, 10).is_err());
    }
}
