//! Replays the fuzz corpus (fuzz/corpus/http_request) through the blocking HTTP layer, the same
//! way the fuzz target does, so every input the fuzzer kept stays fixed on every test run.

use std::path::Path;

#[test]
fn every_corpus_input_gives_well_formed_responses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/http_request");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the fuzz corpus folder") {
        let path = entry.expect("a corpus entry").path();
        let data = std::fs::read(&path).expect("a corpus file");
        let outcome = std::panic::catch_unwind(|| shared::http::fuzzing::fuzz_one(&data));
        assert!(outcome.is_ok(), "corpus input {} fails", path.display());
        replayed += 1;
    }
    assert!(
        replayed >= 20,
        "only {replayed} corpus inputs in {}",
        dir.display()
    );
}
