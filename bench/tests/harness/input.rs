use super::*;

#[test]
fn unknown_names_are_refused_with_the_valid_ones() {
    let output = Bench::new("run").scenario("nope").output();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in preset::names() {
        assert!(stderr.contains(name), "{stderr}");
    }

    let output = Bench::new("run").arg("--tool", "siege").output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("wrk, oha, ab, hey"),
        "{stderr}"
    );

    let output = Bench::new("run").targets("flask").output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("sync-pool"),
        "{stderr}"
    );

    let output = Bench::new("run").arg("--rate", "100").output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("--tool oha"),
        "{stderr}"
    );

    let output = Bench::new("compare")
        .positional("tokio-axum")
        .positional("sync-pool")
        .arg("--rounds", "2")
        .output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("at least 3"),
        "{stderr}"
    );
}

#[test]
fn scenarios_lists_every_preset_with_its_source() {
    let output = Bench::new("scenarios").output();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for s in preset::all() {
        assert!(
            stdout.contains(s.name) && stdout.contains(s.source),
            "{stdout}"
        );
    }
}

/// A bad --vary exits 2 with a message naming it; a knob in --vary and as its own flag is an
/// error, not a silent override.
#[test]
fn bad_vary_exits_2_and_names_what_is_wrong() {
    for (args, named) in [
        (&["--vary", "threads=1,2"][..], "threads"),
        (&["--vary", "delay-ms="][..], "delay-ms"),
        (&["--vary", "connections=4,many"][..], "many"),
        (
            &["--vary", "delay-ms=1,2", "--delay-ms", "5"][..],
            "delay-ms",
        ),
        (&["--vary", "rate=1", "--vary", "rate=2"][..], "rate"),
        (&["--vary", "db-mode=pool,sharded"][..], "sharded"),
    ] {
        let mut all = vec!["sweep", "--scenario", "quick"];
        all.extend_from_slice(args);
        let output = bench(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", show(&output));
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
    let output = Bench::new("run").scenario("flip-map").output();
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("bench sweep --scenario flip-map"),
        "{}",
        show(&output)
    );
}

/// Every numeric flag of every command, given 0, a negative number, a huge value and junk:
/// each refusal is exit status 2 and one line naming the flag, before anything starts. The
/// flags for which 0 means something (none, or no delay) take it.
#[test]
fn every_numeric_flag_refuses_zero_negative_huge_and_junk_in_one_line() {
    // (the command line before the flag, the flag, whether 0 is a value it takes)
    let run: &[&str] = &["run", "--scenario", "quick"];
    let compare: &[&str] = &["compare", "tokio-axum", "sync-pool"];
    let sweep: &[&str] = &["sweep", "--scenario", "quick"];
    let diff: &[&str] = &["diff", "old", "new"];
    let table: &[(&[&str], &str, bool)] = &[
        (run, "--connections", false),
        (run, "--rate", false),
        (run, "--duration", false),
        (run, "--warmup", true),
        (run, "--delay-ms", true),
        (run, "--work", true),
        (compare, "--work", true),
        (sweep, "--work", true),
        (run, "--pool-size", false),
        (run, "--workers", false),
        (run, "--slow-clients", true),
        (run, "--idle-connections", true),
        (run, "--rounds", false),
        (run, "--rows", false),
        (run, "--fault-every", true),
        (compare, "--connections", false),
        (compare, "--rounds", false),
        (compare, "--fail-below", false),
        (sweep, "--slo-p99-ms", false),
        (sweep, "--workers", false),
        (&["client"], "--requests", false),
        (&["client"], "--delay-ms", true),
        (&["client"], "--threads", false),
        (&["client"], "--rounds", false),
        (&["verify"], "--rows", false),
        (diff, "--noise", true),
        (diff, "--fail-on-regression", true),
    ];
    for &(before, flag, zero_is_a_value) in table {
        for value in ["0", "-1", "99999999999", "junk"] {
            if value == "0" && zero_is_a_value {
                continue;
            }
            let mut args = before.to_vec();
            args.extend([flag, value]);
            let output = bench(&args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {}", show(&output));
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
            assert!(
                stderr.contains(flag),
                "{args:?} does not name {flag}: {stderr}"
            );
        }
    }
    // --vary's numbers follow the same ranges as the flags.
    for vary in [
        "connections=0",
        "workers=-1",
        "rate=99999999999",
        "pool-size=junk",
        "work=100001",
    ] {
        let output = bench(&["sweep", "--scenario", "quick", "--vary", vary]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{vary}: {}", show(&output));
        assert_eq!(stderr.lines().count(), 1, "{vary}: {stderr}");
        assert!(stderr.contains("--vary"), "{vary}: {stderr}");
    }
    // Unknown names are usage errors too, naming the flag.
    for (args, flag) in [
        (&["run", "--scenario", "nope"][..], "--scenario"),
        (&["run", "--targets", "flask"][..], "--targets"),
        (&["run", "--baseline", "flask"][..], "--baseline"),
        (
            &["verify", "--url", "http://127.0.0.1:9", "--binary", "flask"][..],
            "--binary",
        ),
    ] {
        let output = bench(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", show(&output));
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}
