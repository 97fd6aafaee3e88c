//! Any bytes, split at any point, through the vendored may_minihttp's parse and answers (the
//! green model's HTTP layer, with the patches that guard limits and framing): no panic, and
//! only well-formed responses. `servers/may-green/tests/fuzz_corpus.rs` replays the corpus on
//! every test run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(why) = may_minihttp::fuzzing::fuzz_one(data) {
        panic!("{why}");
    }
});
