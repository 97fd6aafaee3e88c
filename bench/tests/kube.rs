//! deploy/k8s, checked without a cluster (scripts/kube-test runs it under podman).
//!
//! What this proves: every overlay renders with the kustomize of kubectl 1.20 (Debian 12's
//! kubernetes-client, unpacked into target/kube by scripts/kube/tools); every rendering is valid
//! against the schemas of Kubernetes 1.25 and 1.37 with unknown fields refused
//! (kubernetes-validate --strict); and the rendered stack holds what compose.yaml encodes: a
//! Deployment per target running its binary with the contract's flags (compose.yaml's values),
//! readiness on /health, pinned images, compio-tpc's seccomp setting, PostgreSQL's init scripts
//! (sql/) and its readiness over TCP after them, no CPU limit on a target. The last test breaks
//! a rendering four ways and sees each refused. What it cannot prove: a real cluster's
//! scheduling, Services, DNS and probes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use bench::stack::target::CONTRACT_ENV;
use serde::Deserialize;
use serde_norway::Value;
use shared::Binary;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn k8s() -> PathBuf {
    root().join("deploy/k8s")
}

/// A tool scripts/kube/tools puts in target/kube, or the path an environment variable names.
fn tool(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/kube").join(default));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/kube/tools (or set {variable})",
        path.display()
    );
    path
}

/// The kustomizations a user applies: base, and every folder of overlays/.
fn overlays() -> Vec<(String, PathBuf)> {
    let mut found = vec![("base".to_string(), k8s().join("base"))];
    let mut more: Vec<(String, PathBuf)> = std::fs::read_dir(k8s().join("overlays"))
        .expect("deploy/k8s/overlays")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("kustomization.yaml").is_file())
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                path,
            )
        })
        .collect();
    more.sort();
    found.extend(more);
    found
}

/// `kubectl kustomize DIR` with kubectl 1.20's kustomize.
fn render(dir: &Path) -> String {
    let output = Command::new(tool("BENCH_KUBECTL", "kubectl"))
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("a YAML document"))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
}

fn names_of(docs: &[Value], kind: &str) -> BTreeSet<String> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .filter_map(|d| d["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// A ConfigMap's data as strings.
fn data(docs: &[Value], name: &str) -> BTreeMap<String, String> {
    let Some(map) = find(docs, "ConfigMap", name).and_then(|c| c["data"].as_mapping()) else {
        return BTreeMap::new();
    };
    map.iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
        .collect()
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn port_of(listen: &str) -> Option<u64> {
    listen.rsplit(':').next()?.parse().ok()
}

/// The targets this workspace builds.
fn workspace_targets() -> Vec<Binary> {
    Binary::ALL
        .into_iter()
        .filter(|b| root().join("servers").join(b.name()).is_dir())
        .collect()
}

/// What is wrong with a target's Deployment and flags in a rendered stack.
fn target_problems(docs: &[Value], binary: Binary) -> Vec<String> {
    let name = binary.name();
    let Some(deployment) = find(docs, "Deployment", name) else {
        return vec![format!(
            "no Deployment {name} (a folder deploy/k8s/targets/{name}, listed in base; ARCHITECTURE.md, Adding a target)"
        )];
    };
    let mut problems = Vec::new();
    let container = container(deployment);
    if container["command"][0].as_str() != Some(&format!("/usr/local/bin/{name}")) {
        problems.push(format!(
            "{name}: the command does not run /usr/local/bin/{name}"
        ));
    }
    let sources: Vec<&str> = container["envFrom"]
        .as_sequence()
        .map(|list| {
            list.iter()
                .filter_map(|s| s["configMapRef"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let flags_name = format!("{name}-flags");
    if sources != ["targets-common", flags_name.as_str()] {
        problems.push(format!(
            "{name}: its variables come from {sources:?}, not targets-common and {flags_name}"
        ));
    }
    let mut flags = data(docs, "targets-common");
    flags.extend(data(docs, &flags_name));
    for key in flags.keys() {
        if !CONTRACT_ENV.contains(&key.as_str()) {
            problems.push(format!("{name}: {key} is not a contract variable"));
        }
    }
    if !flags.contains_key("DATABASE_URL") {
        problems.push(format!("{name}: no DATABASE_URL"));
    }
    let listen = flags.get("LISTEN").and_then(|l| port_of(l));
    let port = container["ports"][0]["containerPort"].as_u64();
    let probe = &container["readinessProbe"]["httpGet"];
    // The podman overlay drops containerPort (podman 4.3 refuses one on the host's network).
    if listen.is_none()
        || port.is_some_and(|p| Some(p) != listen)
        || probe["port"].as_u64() != listen
        || probe["path"].as_str() != Some("/health")
    {
        problems.push(format!(
            "{name}: LISTEN {listen:?}, containerPort {port:?} and a readiness probe on /health at that port must agree"
        ));
    }
    if !container["resources"]["limits"]["cpu"].is_null() {
        problems.push(format!(
            "{name}: a CPU limit (a CFS quota throttles the tails we measure)"
        ));
    }
    if binary == Binary::CompioTpc {
        problems.extend(seccomp_problems(deployment, name));
    }
    problems
}

/// io_uring needs a seccomp profile that allows it: the field for Kubernetes, the annotation
/// for podman kube play (which ignores the field).
fn seccomp_problems(deployment: &Value, name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let profile = container(deployment)["securityContext"]["seccompProfile"]["type"].as_str();
    if !matches!(profile, Some("Unconfined" | "Localhost")) {
        problems.push(format!(
            "{name}: no seccompProfile Unconfined or Localhost (io_uring is refused by the runtimes' default profiles)"
        ));
    }
    let annotation = format!("container.seccomp.security.alpha.kubernetes.io/{name}");
    if deployment["spec"]["template"]["metadata"]["annotations"][annotation.as_str()].as_str()
        != Some("unconfined")
    {
        problems.push(format!("{name}: no {annotation}: unconfined (podman's)"));
    }
    problems
}

/// Every image names a version (`latest`, or no tag, changes under a user); the suite's own
/// are tagged with this version, and used from the node when there.
fn image_problems(docs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for deployment in docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("Deployment"))
    {
        let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
        let container = container(deployment);
        let image = container["image"].as_str().unwrap_or_default();
        let tag = image.rsplit_once(':').map(|(_, tag)| tag);
        let pinned = if image.starts_with("rust-web-perf/") {
            tag == Some(env!("CARGO_PKG_VERSION"))
        } else {
            tag.is_some_and(|t| t != "latest" && t.chars().any(|c| c.is_ascii_digit()))
        };
        if !pinned {
            problems.push(format!(
                "{name}: image {image:?} is not pinned (the suite's own images carry its version, {})",
                env!("CARGO_PKG_VERSION")
            ));
        }
        if container["imagePullPolicy"].as_str() != Some("IfNotPresent") {
            problems.push(format!("{name}: imagePullPolicy is not IfNotPresent"));
        }
        let spec = &deployment["spec"]["template"]["spec"];
        if spec["hostNetwork"].as_bool() == Some(true)
            && (deployment["spec"]["strategy"]["type"].as_str() != Some("Recreate")
                || spec["dnsPolicy"].as_str() != Some("ClusterFirstWithHostNet"))
        {
            problems.push(format!(
                "{name}: on the node's network it needs strategy Recreate (its port) and dnsPolicy ClusterFirstWithHostNet (the Services' names)"
            ));
        }
    }
    problems
}

/// Everything wrong with a rendered whole stack.
fn stack_problems(docs: &[Value]) -> Vec<String> {
    let mut problems: Vec<String> = workspace_targets()
        .into_iter()
        .flat_map(|binary| target_problems(docs, binary))
        .collect();
    problems.extend(image_problems(docs));
    problems
}

fn rendered(name: &str) -> Vec<Value> {
    let dir = if name == "base" {
        k8s().join("base")
    } else {
        k8s().join("overlays").join(name)
    };
    documents(&render(&dir))
}

#[test]
fn the_rendered_stack_holds_every_target_as_compose_yaml_runs_it() {
    let docs = rendered("base");
    let problems = stack_problems(&docs);
    assert!(problems.is_empty(), "deploy/k8s/base: {problems:#?}");
    // On the node's network a declared port is what keeps two pods that need it apart.
    for binary in workspace_targets() {
        let deployment = find(&docs, "Deployment", binary.name()).unwrap();
        assert!(
            container(deployment)["ports"][0]["containerPort"].is_u64(),
            "{binary}: no containerPort"
        );
    }
    let podman = rendered("podman");
    let problems = stack_problems(&podman);
    assert!(
        problems.is_empty(),
        "deploy/k8s/overlays/podman: {problems:#?}"
    );
}

/// compose.yaml's environment of a service, as strings.
fn compose_environment(service: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join("compose.yaml")).expect("compose.yaml");
    let mut compose: Value = serde_norway::from_str(&text).expect("compose.yaml parses");
    compose.apply_merge().expect("its merge keys apply");
    compose["services"][service]["environment"]
        .as_mapping()
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_target_has_compose_yamls_flags_and_a_port_the_proxy_and_the_description_use() {
    let docs = rendered("base");
    let proxy = data(&docs, "proxy")["TARGETS"].clone();
    let described = data(&docs, "describe")["DESCRIBE_TARGETS"].clone();
    for binary in workspace_targets() {
        let name = binary.name();
        let ours = data(&docs, &format!("{name}-flags"));
        let mut theirs = compose_environment(name);
        for key in ["LISTEN", "DATABASE_URL", "UPSTREAM_URL"] {
            theirs.remove(key);
        }
        let mut flags = ours.clone();
        let listen = flags.remove("LISTEN").expect("LISTEN");
        assert_eq!(
            flags, theirs,
            "{name}: its flags differ from compose.yaml's"
        );
        let port = port_of(&listen).unwrap();
        let service = find(&docs, "Service", name).unwrap_or_else(|| panic!("no Service {name}"));
        assert_eq!(service["spec"]["ports"][0]["port"].as_u64(), Some(port));
        assert!(
            proxy
                .split_whitespace()
                .any(|t| t.starts_with(&format!("{name}={name}:{port}="))),
            "the proxy does not front {name} at {name}:{port}: {proxy}"
        );
        assert!(
            described
                .split_whitespace()
                .any(|t| t.starts_with(&format!("{name}={port},"))),
            "the description does not give {name} at {port}: {described}"
        );
    }
    let common = data(&docs, "targets-common");
    assert_eq!(
        common["DATABASE_URL"],
        "postgres://postgres@postgres:5432/postgres"
    );
    assert_eq!(common["UPSTREAM_URL"], "http://upstream:8090/upstream");
}

#[test]
fn postgres_loads_sql_in_order_and_is_ready_over_tcp_after_the_last_script() {
    let docs = rendered("base");
    let init = data(&docs, "postgres-init");
    let expected: BTreeMap<String, String> = [
        ("01-schema.sql", "schema.sql"),
        ("02-data.sql", "data.sql"),
        ("03-stats.sql", "stats.sql"),
    ]
    .into_iter()
    .map(|(key, file)| {
        let text = std::fs::read_to_string(root().join("sql").join(file)).expect("sql/");
        (key.to_string(), text)
    })
    .collect();
    assert!(
        init == expected,
        "deploy/k8s/roles/postgres.yaml's postgres-init is not a copy of sql/ (copy the files again)"
    );
    let postgres = find(&docs, "Deployment", "postgres").expect("a postgres Deployment");
    let probe = container(postgres)["readinessProbe"]["exec"]["command"]
        .as_sequence()
        .expect("an exec readiness probe")
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        probe.contains("pg_isready -h 127.0.0.1") && probe.contains("pg_stat_statements"),
        "{probe}"
    );
    let mount = &container(postgres)["volumeMounts"][0];
    assert_eq!(
        mount["mountPath"].as_str(),
        Some("/docker-entrypoint-initdb.d")
    );
}

#[test]
fn each_target_has_an_overlay_with_it_alone() {
    for binary in workspace_targets() {
        let name = binary.name();
        let overlay = format!("only-{name}");
        assert!(
            k8s().join("overlays").join(&overlay).is_dir(),
            "no deploy/k8s/overlays/{overlay}"
        );
        let docs = rendered(&overlay);
        let targets: Vec<String> = names_of(&docs, "Deployment")
            .into_iter()
            .filter(|d| Binary::from_name(d).is_some())
            .collect();
        assert_eq!(targets, [name], "{overlay}");
        assert!(target_problems(&docs, binary).is_empty(), "{overlay}");
        for key in [("proxy", "TARGETS"), ("describe", "DESCRIBE_TARGETS")] {
            let value = data(&docs, key.0)[key.1].clone();
            assert_eq!(
                value.split_whitespace().count(),
                1,
                "{overlay}: {}'s {} names more than {name}: {value}",
                key.0,
                key.1
            );
            assert!(value.starts_with(&format!("{name}=")), "{overlay}: {value}");
        }
    }
}

#[test]
fn the_overlays_change_what_they_say() {
    let pgbouncer = rendered("pgbouncer");
    assert_eq!(
        data(&pgbouncer, "targets-common")["DATABASE_URL"],
        "postgres://postgres@pgbouncer:6432/postgres"
    );
    assert_eq!(data(&pgbouncer, "pgbouncer")["POOL_MODE"], "session");
    assert!(find(&pgbouncer, "Deployment", "pgbouncer").is_some());

    let placement = rendered("placement");
    for deployment in placement
        .iter()
        .filter(|d| d["kind"].as_str() == Some("Deployment"))
    {
        let name = deployment["metadata"]["name"].as_str().unwrap();
        let role =
            deployment["spec"]["template"]["spec"]["nodeSelector"]["rust-web-perf/role"].as_str();
        let expected = if matches!(name, "postgres" | "upstream") {
            "database"
        } else {
            "stack"
        };
        assert_eq!(role, Some(expected), "placement: {name}");
    }

    let podman = rendered("podman");
    for (map, key) in [
        ("targets-common", "DATABASE_URL"),
        ("targets-common", "UPSTREAM_URL"),
    ] {
        assert!(
            data(&podman, map)[key].contains("127.0.0.1"),
            "podman: {map} {key}"
        );
    }
    assert!(data(&podman, "proxy")["TARGETS"]
        .split_whitespace()
        .all(|t| t.contains("=127.0.0.1:")));
}

/// `kubernetes-validate --strict` of some files against one Kubernetes version.
fn validate(files: &[PathBuf], version: &str) -> Result<(), String> {
    let output = Command::new(tool("BENCH_KUBE_VALIDATE", "venv/bin/kubernetes-validate"))
        .args(["--strict", "--quiet", "--kubernetes-version", version])
        .args(files)
        .output()
        .expect("kubernetes-validate runs");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kube-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The oldest and newest schemas kubernetes-validate bundles.
const VERSIONS: [&str; 2] = ["1.25.0", "1.37.0"];

#[test]
fn every_overlay_renders_and_is_valid_for_two_kubernetes_versions() {
    let dir = scratch("valid");
    let files: Vec<PathBuf> = overlays()
        .into_iter()
        .map(|(name, path)| {
            let file = dir.join(format!("{name}.yaml"));
            std::fs::write(&file, render(&path)).unwrap();
            file
        })
        .collect();
    for version in VERSIONS {
        if let Err(why) = validate(&files, version) {
            panic!("deploy/k8s against Kubernetes {version}:\n{why}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each check above can fail: a rendering broken four ways is refused each time, naming what.
#[test]
fn a_broken_manifest_is_refused() {
    let text = render(&k8s().join("base"));
    let good = documents(&text);
    assert!(stack_problems(&good).is_empty());
    let mut broken = Vec::new();

    let without_hyper: Vec<Value> = good
        .iter()
        .filter(|d| !(d["kind"] == "Deployment" && d["metadata"]["name"] == "tokio-hyper"))
        .cloned()
        .collect();
    broken.push((without_hyper, "no Deployment tokio-hyper"));

    let mut unpinned = good.clone();
    for doc in &mut unpinned {
        if doc["kind"] == "Deployment" && doc["metadata"]["name"] == "postgres" {
            doc["spec"]["template"]["spec"]["containers"][0]["image"] = "postgres:latest".into();
        }
    }
    broken.push((
        unpinned,
        "postgres: image \"postgres:latest\" is not pinned",
    ));

    let mut confined = good.clone();
    for doc in &mut confined {
        if doc["kind"] == "Deployment" && doc["metadata"]["name"] == "compio-tpc" {
            let container = &mut doc["spec"]["template"]["spec"]["containers"][0];
            container
                .as_mapping_mut()
                .unwrap()
                .remove("securityContext");
        }
    }
    broken.push((confined, "compio-tpc: no seccompProfile"));

    for (docs, expected) in broken {
        let problems = stack_problems(&docs);
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "expected {expected:?} among {problems:#?}"
        );
    }

    // An unknown field: the schemas refuse it.
    let dir = scratch("unknown");
    let file = dir.join("unknown.yaml");
    let misspelt = text.replacen("imagePullPolicy:", "imagePulPolicy:", 1);
    assert_ne!(misspelt, text);
    std::fs::write(&file, misspelt).unwrap();
    for version in VERSIONS {
        let why = validate(std::slice::from_ref(&file), version)
            .expect_err("a misspelt field must fail strict validation");
        assert!(why.contains("imagePulPolicy"), "{why}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
