//! Replays the green parser's fuzz corpus (fuzz/corpus/green_request) the way the fuzz target
//! runs it (`may_minihttp::fuzzing::fuzz_one`: the vendored may_minihttp's parse and answers,
//! split at a point the data picks), so that every input the fuzzer kept is checked on every
//! test run.

use std::path::Path;

use may_minihttp::fuzzing::{check_output, fuzz_one, Expected};

#[test]
fn every_green_fuzz_corpus_input_gives_well_formed_responses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/green_request");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the green fuzz corpus folder") {
        let path = entry.expect("a corpus entry").path();
        let data = std::fs::read(&path).expect("a corpus file");
        if let Err(why) = fuzz_one(&data) {
            panic!("corpus input {} fails: {why}", path.display());
        }
        replayed += 1;
    }
    assert!(
        replayed >= 20,
        "only {replayed} corpus inputs in {}",
        dir.display()
    );
}

#[test]
fn pipelined_requests_split_anywhere_are_each_answered() {
    let two = b"GET /json HTTP/1.1\r\nHost: a\r\n\r\nHEAD /json HTTP/1.1\r\nHost: a\r\n\r\n";
    for split in 0..=two.len() {
        let mut data = vec![split as u8];
        data.extend_from_slice(two);
        fuzz_one(&data).unwrap_or_else(|why| panic!("split at {split}: {why}"));
    }
}

#[test]
fn the_oracle_refuses_a_missing_a_surplus_or_a_wrong_response() {
    let ok = Expected {
        status: 200,
        close: false,
        head: false,
    };
    let one = b"HTTP/1.1 200 OK\r\nServer: s\r\nDate: d\r\nContent-Length: 2\r\n\r\n{}";
    assert!(check_output(one, &[ok]).is_ok());
    assert!(check_output(one, &[]).is_err(), "a surplus response");
    assert!(check_output(one, &[ok, ok]).is_err(), "a missing response");
    let closing = Expected { close: true, ..ok };
    assert!(
        check_output(one, &[closing]).is_err(),
        "no Connection: close"
    );
    let refused = Expected { status: 400, ..ok };
    assert!(check_output(one, &[refused]).is_err(), "the wrong status");
    assert!(
        check_output(&one[..one.len() - 1], &[ok]).is_err(),
        "a body cut short"
    );
}
