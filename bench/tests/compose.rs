//! compose.yaml, checked statically (scripts/compose-test runs it under podman).
//!
//! It must parse; every target in the workspace has a service whose variables are all contract
//! names; the images it builds are stages of the Dockerfile; the files it mounts exist; and the
//! nginx configs its entrypoint renders from our templates pass `nginx -t`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use bench::stack::target::CONTRACT_ENV;
use serde_norway::Value;
use shared::Binary;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// compose.yaml, with its merge keys (`<<: *target`) applied as an engine applies them.
fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("compose.yaml")).expect("compose.yaml");
    let mut value: Value = serde_norway::from_str(&text).expect("compose.yaml parses as YAML");
    value
        .apply_merge()
        .expect("compose.yaml's merge keys apply");
    value
}

fn services(compose: &Value) -> &serde_norway::Mapping {
    compose["services"]
        .as_mapping()
        .expect("a services mapping")
}

/// The service of a target, or a failure naming the one compose.yaml lacks.
fn target_service(services: &serde_norway::Mapping, binary: Binary) -> &Value {
    services.get(binary.name()).unwrap_or_else(|| {
        panic!("compose.yaml has no service for {binary} (ARCHITECTURE.md, Adding a target)")
    })
}

#[test]
fn servers_holds_a_folder_per_target_and_nothing_else() {
    let mut folders: Vec<String> = std::fs::read_dir(root().join("servers"))
        .expect("servers/")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let mut targets: Vec<String> = Binary::ALL.iter().map(|b| b.name().to_string()).collect();
    targets.sort();
    assert_eq!(
        folders, targets,
        "servers/ and shared::Binary::ALL disagree: a new target needs both (ARCHITECTURE.md, Adding a target)"
    );
}

/// The targets this workspace builds: a folder in servers/ per binary.
fn workspace_targets() -> Vec<Binary> {
    Binary::ALL
        .into_iter()
        .filter(|b| root().join("servers").join(b.name()).is_dir())
        .collect()
}

fn environment_keys(service: &Value) -> BTreeSet<String> {
    match &service["environment"] {
        Value::Mapping(map) => map
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        Value::Sequence(list) => list
            .iter()
            .filter_map(|item| item.as_str())
            .map(|item| item.split('=').next().unwrap_or("").to_string())
            .collect(),
        _ => BTreeSet::new(),
    }
}

#[test]
fn every_target_has_a_service_with_contract_variables_only() {
    let compose = compose();
    let services = services(&compose);
    for binary in workspace_targets() {
        let service = target_service(services, binary);
        assert!(
            service.is_mapping(),
            "no service {} in compose.yaml",
            binary.name()
        );
        assert_eq!(
            service["command"][0].as_str(),
            Some(binary.name()),
            "{}: command must run the binary",
            binary.name()
        );
        let keys = environment_keys(service);
        assert!(
            keys.contains("DATABASE_URL"),
            "{}: no DATABASE_URL",
            binary.name()
        );
        for key in &keys {
            assert!(
                CONTRACT_ENV.contains(&key.as_str()),
                "{}: {key} is not a contract variable ({CONTRACT_ENV:?})",
                binary.name()
            );
        }
    }
}

#[test]
fn services_with_a_listen_variable_are_targets_or_nginx() {
    let compose = compose();
    for (name, service) in services(&compose) {
        let name = name.as_str().unwrap_or_default();
        let is_target = Binary::from_name(name).is_some();
        let is_nginx = matches!(name, "upstream" | "proxy");
        if environment_keys(service).contains("LISTEN") {
            assert!(is_target || is_nginx, "{name} has LISTEN but is neither");
        }
    }
}

#[test]
fn postgres_loads_sql_in_order_and_pgbouncer_is_a_session_pool_under_a_profile() {
    let compose = compose();
    let services = services(&compose);
    let mounts: Vec<&str> = services["postgres"]["volumes"]
        .as_sequence()
        .expect("postgres volumes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut init_names = Vec::new();
    for mount in &mounts {
        let source = mount.split(':').next().unwrap_or_default();
        assert!(
            root().join(source).is_file(),
            "mounted file {source} does not exist"
        );
        init_names.push(mount.split(':').nth(1).unwrap_or_default().to_string());
    }
    let mut sorted = init_names.clone();
    sorted.sort();
    assert_eq!(init_names, sorted, "init scripts run in name order");
    assert!(
        init_names[0].ends_with("schema.sql"),
        "schema.sql must load first"
    );

    // Healthy over TCP, and only after the last init script (stats.sql creates the extension).
    let check = services["postgres"]["healthcheck"]["test"]
        .as_sequence()
        .expect("a healthcheck")
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        check.contains("pg_isready -h 127.0.0.1") && check.contains("pg_stat_statements"),
        "{check}"
    );
    assert!(init_names.last().unwrap().ends_with("stats.sql"));
    let stats = std::fs::read_to_string(root().join("sql/stats.sql")).unwrap();
    assert!(stats.contains("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"));

    let pgbouncer = &services["pgbouncer"];
    assert_eq!(pgbouncer["profiles"][0].as_str(), Some("pgbouncer"));
    // Inside the network pgbouncer listens on 5432 (6432 is the published port).
    let text = std::fs::read_to_string(root().join("compose.yaml")).unwrap();
    assert!(text.contains("@pgbouncer:5432/") && !text.contains("@pgbouncer:6432"));
    assert_eq!(
        pgbouncer["environment"]["POOL_MODE"].as_str(),
        Some("session")
    );
}

#[test]
fn every_target_may_open_65536_descriptors() {
    let compose = compose();
    let services = services(&compose);
    for binary in workspace_targets() {
        let nofile = &target_service(services, binary)["ulimits"]["nofile"];
        assert_eq!(
            (nofile["soft"].as_u64(), nofile["hard"].as_u64()),
            (Some(65536), Some(65536)),
            "{binary}: ulimits"
        );
    }
    // On a host whose hard limit is lower, scripts/compose-test merges low-nofile.yaml: it
    // must lower every target's.
    let text = std::fs::read_to_string(root().join("scripts/compose/low-nofile.yaml"))
        .expect("scripts/compose/low-nofile.yaml");
    let mut low: Value = serde_norway::from_str(&text).expect("low-nofile.yaml parses");
    low.apply_merge().expect("its merge keys apply");
    for binary in workspace_targets() {
        assert_eq!(
            low["services"][binary.name()]["ulimits"]["nofile"]["hard"].as_u64(),
            Some(20000),
            "scripts/compose/low-nofile.yaml lacks {binary}"
        );
    }
}

#[test]
fn built_images_are_dockerfile_stages_and_copy_every_target() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let stages: BTreeSet<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .filter_map(|l| l.split(" AS ").nth(1))
        .map(str::trim)
        .collect();
    let compose = compose();
    for (name, service) in services(&compose) {
        if let Some(stage) = service["build"]["target"].as_str() {
            assert!(
                stages.contains(stage),
                "{name:?} builds stage {stage}, not in the Dockerfile"
            );
        }
    }
    // It copies every binary servers/ names (one folder per target, checked above).
    assert!(
        dockerfile
            .contains(r#"for bin in $(ls servers) bench; do cp "target/release/$bin" /out/; done"#),
        "the Dockerfile does not copy a binary per folder of servers/"
    );
}

/// The proxy's TARGETS, with the Docker host names swapped for loopback so nginx -t can
/// resolve them.
fn proxy_targets_on_loopback(compose: &Value) -> String {
    let targets = services(compose)["proxy"]["environment"]["TARGETS"]
        .as_str()
        .expect("proxy TARGETS");
    targets
        .split_whitespace()
        .map(|entry| {
            let parts: Vec<&str> = entry.split('=').collect();
            assert_eq!(
                parts.len(),
                3,
                "TARGETS entry {entry} is not name=host:port=port"
            );
            let port = parts[1].rsplit(':').next().unwrap_or("8000");
            format!("{}=127.0.0.1:{port}={}", parts[0], parts[2])
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_proxy_fronts_every_target_service() {
    let compose = compose();
    let targets = proxy_targets_on_loopback(&compose);
    for binary in workspace_targets() {
        assert!(
            targets
                .split_whitespace()
                .any(|t| t.starts_with(&format!("{}=", binary.name()))),
            "the proxy does not front {}",
            binary.name()
        );
    }
}

#[test]
fn the_entrypoint_renders_configs_that_nginx_accepts() {
    let Some(_) = bench::stack::process::find_program("nginx", &["/usr/sbin"]) else {
        panic!("nginx is needed for this test: apt-get install nginx-light libnginx-mod-http-echo");
    };
    let compose = compose();
    let run_dir = std::env::temp_dir().join(format!("compose-test-{}", std::process::id()));
    std::fs::create_dir_all(&run_dir).unwrap();
    for (role, targets) in [
        ("upstream", String::new()),
        ("proxy", proxy_targets_on_loopback(&compose)),
    ] {
        let output = Command::new("sh")
            .arg(root().join("nginx/docker-entrypoint.sh"))
            .env("ROLE", role)
            .env("TARGETS", &targets)
            .env("TEMPLATES", root().join("nginx"))
            .env("RUN_DIR", &run_dir)
            .env("NGINX_TEST", "1")
            .output()
            .expect("sh runs");
        assert!(
            output.status.success(),
            "{role}: nginx -t failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&run_dir);
}

/// Compose's `${BENCH_HOST:-127.0.0.1}` as compose fills it when BENCH_HOST is unset.
fn on_default_host(text: &str) -> String {
    text.replace("${BENCH_HOST:-127.0.0.1}", "127.0.0.1")
}

/// The published host port of a service's container port.
fn published(service: &Value, container_port: &str) -> Option<u16> {
    service["ports"].as_sequence()?.iter().find_map(|p| {
        let p = on_default_host(p.as_str()?);
        let parts: Vec<&str> = p.split(':').collect();
        (parts.len() == 3 && parts[2] == container_port).then(|| parts[1].parse().ok())?
    })
}

/// The `describe` service runs `bench describe` as compose would start it (on another port),
/// and what it serves is a description `bench run --remote` accepts: this version, every
/// target, each at its published port direct and at its proxy port.
#[test]
fn the_describe_service_serves_a_description_of_every_target() {
    let compose = compose();
    let services = services(&compose);
    let command: Vec<String> = services["describe"]["command"]
        .as_sequence()
        .expect("a describe command list")
        .iter()
        .map(|a| on_default_host(a.as_str().unwrap()))
        .collect();
    assert_eq!(&command[..2], ["bench", "describe"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let args: Vec<String> = command[1..]
        .iter()
        .map(|a| {
            if a.starts_with("--listen=") {
                format!("--listen=127.0.0.1:{port}")
            } else {
                a.clone()
            }
        })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(&args)
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bench describe starts");
    // Its one line ends with the URL for the load host, the token in its user part.
    let mut said = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut said,
    )
    .unwrap();
    let (token, _) = bench::remote::split_url(said.trim().rsplit(' ').next().unwrap_or(""));
    let token = token.unwrap_or_else(|| panic!("bench describe printed no token: {said}"));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(
        bench::client::get(addr, "/stack.json").unwrap().status,
        401,
        "the description without the token"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let response = loop {
        match bench::client::get_with_token(addr, "/stack.json", Some(token.as_str())) {
            Ok(r) => break r,
            Err(e) if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let output = child.wait_with_output().unwrap();
                panic!(
                    "bench describe {args:?} did not serve: {e:#}\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let description: bench::remote::Description =
        serde_json::from_slice(&response.body).expect("a description");
    description.check_version("compose").expect("this version");
    assert_eq!(description.status_url, None, "compose serves no samples");
    let proxy = proxy_targets_on_loopback(&compose);
    let names: Vec<&str> = description
        .targets
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let expected: Vec<&str> = workspace_targets().iter().map(|b| b.name()).collect();
    assert_eq!(
        names, expected,
        "the describe service's --target lines are not one per target"
    );
    for target in &description.targets {
        let direct = published(&services[target.name.as_str()], "8000")
            .unwrap_or_else(|| panic!("{} publishes no port", target.name));
        assert_eq!(target.direct, format!("http://127.0.0.1:{direct}/test"));
        let proxy_port = proxy
            .split_whitespace()
            .find_map(|t| t.strip_prefix(&format!("{}=", target.name)))
            .and_then(|t| t.rsplit('=').next())
            .unwrap();
        assert_eq!(
            target.via_nginx.as_deref(),
            Some(format!("http://127.0.0.1:{proxy_port}/test").as_str())
        );
    }
    let postgres = published(&services["postgres"], "5432").expect("postgres is published");
    assert!(description
        .database_url
        .contains(&format!("127.0.0.1:{postgres}")));
}

/// `major.minor` as numbers, for comparing Rust versions.
fn rust_version(text: &str) -> (u32, u32) {
    let mut parts = text
        .trim()
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The workspace's `rust-version` is at least the highest `rust-version` of every package in
/// Cargo.lock that this platform builds (`generator` asks for 1.95), and the Dockerfile's Rust
/// image is at least that: `cargo build --locked` works in it.
#[test]
fn the_rust_version_and_the_build_image_cover_every_locked_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rustc = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc names its host");
    let output = Command::new(cargo)
        .current_dir(root())
        .args(["metadata", "--locked", "--format-version", "1"])
        .args(["--filter-platform", &host])
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let version_of = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["rust_version"].as_str())
            .map(rust_version)
            .unwrap_or_else(|| panic!("{name} has no rust-version"))
    };
    let ours = version_of("shared");
    let (needed, by) = packages
        .iter()
        .filter_map(|p| {
            Some((
                rust_version(p["rust_version"].as_str()?),
                p["name"].as_str()?,
            ))
        })
        .max()
        .expect("some package states a rust-version");
    assert!(
        ours >= needed,
        "the workspace says rust-version {ours:?}, but {by} in Cargo.lock needs {needed:?}"
    );
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let image = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .and_then(|rest| rest.split('-').next())
        .expect("a FROM rust:X-… stage");
    assert!(
        rust_version(image) >= ours,
        "the Dockerfile builds with rust:{image}, older than the rust-version {ours:?}"
    );
}

/// The build context leaves out what a local build or run left behind (target/ is hundreds
/// of MiB, and `COPY . .` would copy it into the image).
#[test]
fn the_build_context_leaves_out_target_git_and_fuzz() {
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).expect(".dockerignore");
    let entries: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["target/", ".git/", "fuzz/", "results/"] {
        assert!(
            entries.contains(&needed),
            ".dockerignore lacks {needed}: {entries:?}"
        );
    }
}

/// Every image pulled from a registry names its version: `latest`, or no tag, changes under a
/// user (pgbouncer's entrypoint has); the suite's own images are built from the Dockerfile.
#[test]
fn every_registry_image_is_pinned() {
    let compose = compose();
    for (name, service) in services(&compose) {
        let Some(image) = service["image"].as_str() else {
            continue;
        };
        if image.starts_with("rust-web-perf/") {
            continue;
        }
        let tag = image.rsplit_once(':').map(|(_, tag)| tag);
        assert!(
            tag.is_some_and(|t| t != "latest" && t.chars().any(|c| c.is_ascii_digit())),
            "{}: {image} is not pinned to a version",
            name.as_str().unwrap_or_default()
        );
    }
}
