//! The servers the harness did not start, from what the user names them by: a URL resolved to
//! an address ([`address_of`]), and the pids, apps and models given beside the URLs
//! ([`assemble`]) into [`External`] values. `model::external` holds the values; this is where
//! a name meets the network (DNS), so that `model` stays free of I/O.

use std::net::{SocketAddr, ToSocketAddrs};

use shared::Binary;

use crate::model::external::{split_named, External, ExternalModel, Named};

/// Parses `--external NAME=URL`: the URL is the server's `/test` endpoint over plain HTTP.
pub fn parse(text: &str) -> Result<Named<String>, String> {
    let (name, url) = split_named("--external", text, "mine=http://127.0.0.1:9000/test")?;
    if Binary::from_name(&name).is_some() || name == "pgbench" || name == "nginx-static" {
        return Err(format!(
            "--external {text:?}: {name} is the name of a reference; call yours something else"
        ));
    }
    address_of(&url).map_err(|why| format!("--external {name}={url}: {why}"))?;
    Ok(Named { name, value: url })
}

/// The HOST:PORT of a `http://HOST:PORT/test` URL, resolved; or why the URL is not one.
pub fn address_of(url: &str) -> Result<SocketAddr, String> {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    if !matches!(path, "" | "/" | "/test") {
        return Err(format!(
            "the path is {path:?}: give the server's /test endpoint (it must also serve /json and /health beside it)"
        ));
    }
    address_of_any(url)
}

/// The HOST:PORT of any `http://HOST:PORT/…` URL, resolved.
pub fn address_of_any(url: &str) -> Result<SocketAddr, String> {
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "{scheme}:// is not supported: the load tools measure plain HTTP; give http://HOST:PORT/test"
            ))
        }
        None => return Err("not a URL: give http://HOST:PORT/test".into()),
    };
    let authority = rest.find('/').map_or(rest, |i| &rest[..i]);
    if authority.is_empty() || !authority.contains(':') || authority.ends_with(':') {
        return Err("no port: give http://HOST:PORT/test".into());
    }
    authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to no address"))
}

/// What the user says of the externals beside their URLs: pids, apps and models.
#[derive(Clone, Debug, Default)]
pub struct Observed<'a> {
    pub pids: &'a [Named<u32>],
    pub apps: &'a [Named<String>],
    pub models: &'a [Named<ExternalModel>],
}

/// The externals from the flags; a pid, app or model for a name that is no external, a name
/// given twice, or a pid that is no process here, is refused.
pub fn assemble(urls: &[Named<String>], observed: &Observed) -> Result<Vec<External>, String> {
    let mut out: Vec<External> = Vec::new();
    for named in urls {
        if out.iter().any(|e| e.name == named.name) {
            return Err(format!(
                "--external {}: the name is given twice",
                named.name
            ));
        }
        out.push(External {
            name: named.name.clone(),
            url: named.value.clone(),
            addr: address_of(&named.value)?,
            pid: None,
            app: None,
            model: None,
            about: None,
            verified: false,
            breaks: Vec::new(),
            flags: Vec::new(),
            peer: false,
            binary: None,
            remote: None,
            upstream_page: None,
            database: None,
        });
    }
    let known = |out: &[External], flag: &str, name: &str| -> Result<usize, String> {
        out.iter()
            .position(|e| e.name == name)
            .ok_or_else(|| format!("{flag} {name}=…: no --external is called {name}"))
    };
    for named in observed.pids {
        let i = known(&out, "--external-pid", &named.name)?;
        if !std::path::Path::new(&format!("/proc/{}", named.value)).exists() {
            return Err(format!(
                "--external-pid {}={}: no such process on this machine",
                named.name, named.value
            ));
        }
        out[i].pid = Some(named.value);
    }
    for named in observed.apps {
        let i = known(&out, "--external-app", &named.name)?;
        out[i].app = Some(named.value.clone());
    }
    for named in observed.models {
        let i = known(&out, "--external-model", &named.name)?;
        out[i].model = Some(named.value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::external::*;
    use crate::model::settings::Endpoint;
    use shared::Backend;

    #[test]
    fn urls_are_the_test_endpoint_over_http() {
        assert_eq!(
            parse("mine=http://127.0.0.1:9000/test").unwrap(),
            Named {
                name: "mine".into(),
                value: "http://127.0.0.1:9000/test".into()
            }
        );
        assert!(parse("mine=http://127.0.0.1:9000").is_ok());
        assert!(parse("mine=http://localhost:9000/").is_ok());
        for (bad, says) in [
            ("http://127.0.0.1:9000/test", "write NAME=VALUE"),
            ("mine=127.0.0.1:9000", "not a URL"),
            ("mine=https://127.0.0.1:9000/test", "plain HTTP"),
            ("mine=http://127.0.0.1/test", "no port"),
            ("mine=http://127.0.0.1:9000/api", "/test endpoint"),
            (
                "tokio-axum=http://127.0.0.1:9000/test",
                "name of a reference",
            ),
            ("my server=http://127.0.0.1:9000/test", "must be letters"),
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
            assert!(!error.contains('\n'), "{bad}: {error}");
        }
    }

    #[test]
    fn pids_and_apps_name_an_external() {
        let urls = [parse("mine=http://127.0.0.1:9000/test").unwrap()];
        let me = std::process::id();
        let pid = parse_pid(&format!("mine={me}")).unwrap();
        let app = parse_app("mine=svc").unwrap();
        let model = parse_model("mine=pool:19").unwrap();
        let externals = assemble(
            &urls,
            &Observed {
                pids: std::slice::from_ref(&pid),
                apps: std::slice::from_ref(&app),
                models: std::slice::from_ref(&model),
            },
        )
        .unwrap();
        assert_eq!(externals[0].model, Some(ExternalModel::Pool(19)));
        assert_eq!(externals[0].pid, Some(me));
        assert_eq!(externals[0].app.as_deref(), Some("svc"));
        let other = parse_pid("theirs=1").unwrap();
        assert!(assemble(
            &urls,
            &Observed {
                pids: &[other],
                ..Observed::default()
            }
        )
        .unwrap_err()
        .contains("no --external is called theirs"));
        let gone = parse_pid("mine=4000000000").unwrap();
        assert!(assemble(
            &urls,
            &Observed {
                pids: &[gone],
                ..Observed::default()
            }
        )
        .unwrap_err()
        .contains("no such process"));
        assert!(parse_pid("mine=me").is_err());
        let twice = [urls[0].clone(), urls[0].clone()];
        assert!(assemble(&twice, &Observed::default())
            .unwrap_err()
            .contains("twice"));
    }

    #[test]
    fn models_are_a_pool_threads_or_unbounded() {
        assert_eq!(ExternalModel::parse("pool:19"), Ok(ExternalModel::Pool(19)));
        assert_eq!(
            ExternalModel::parse("threads:1024"),
            Ok(ExternalModel::Threads(1024))
        );
        assert_eq!(
            ExternalModel::parse("unbounded"),
            Ok(ExternalModel::Unbounded)
        );
        for bad in ["pool", "pool:0", "pool:-1", "pool:x", "async", "threads:"] {
            let error = parse_model(&format!("mine={bad}")).unwrap_err();
            assert!(error.starts_with("--external-model"), "{bad}: {error}");
            assert!(!error.contains('\n'));
        }
        let urls = [parse("mine=http://127.0.0.1:9000/test").unwrap()];
        let stray = [parse_model("theirs=pool:4").unwrap()];
        let observed = Observed {
            models: &stray,
            ..Observed::default()
        };
        assert!(assemble(&urls, &observed)
            .unwrap_err()
            .contains("no --external is called theirs"));
    }

    #[test]
    fn the_load_url_carries_the_delay_and_backend() {
        let urls = [parse("mine=http://127.0.0.1:9000/test").unwrap()];
        let mine = &assemble(&urls, &Observed::default()).unwrap()[0];
        let mut s = crate::model::preset::find("grinberg").unwrap().settings;
        assert_eq!(
            mine.load_url(mine.addr, &s),
            "http://127.0.0.1:9000/test?delay_ms=20"
        );
        s.backend = Backend::Upstream;
        assert!(mine.load_url(mine.addr, &s).ends_with("&backend=upstream"));
        s.path = Endpoint::Json;
        assert_eq!(mine.load_url(mine.addr, &s), "http://127.0.0.1:9000/json");
    }
}
