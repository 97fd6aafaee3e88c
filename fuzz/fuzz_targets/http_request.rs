//! Any bytes, split at any point, through the blocking HTTP/1.1 layer: no panic, and only
//! well-formed responses. `shared/tests/fuzz_corpus.rs` replays the corpus on every test run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shared::http::fuzzing::fuzz_one(data);
});
