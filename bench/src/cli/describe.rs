//! `bench describe`: the description of a stack this bench did not start (a compose
//! deployment) on a status endpoint, for `bench run --remote` on the load host.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::args::TokenArgs;
use super::{parse_targets, UsageError};
use crate::remote;

#[derive(Args, Debug)]
pub struct DescribeArgs {
    /// Where to serve GET /stack.json.
    #[arg(long, default_value = "0.0.0.0:8099")]
    listen: SocketAddr,
    /// The address the load host reaches the stack at.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The database the targets read, as the load host reaches it.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The upstream page the targets fetch.
    #[arg(long, default_value = "http://upstream:8090/upstream")]
    upstream_url: String,
    /// A target (repeatable): NAME=DIRECT_URL[,NGINX_URL], the URLs of its /test as the load
    /// host reaches them.
    #[arg(long = "target", value_name = "NAME=URL[,URL]")]
    targets: Vec<String>,
    #[command(flatten)]
    token: TokenArgs,
}

pub fn exec(args: DescribeArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let mut targets = Vec::new();
    for text in &args.targets {
        let bad = |why: &str| UsageError(format!("--target {text:?}: {why}"));
        let (name, urls) = text
            .split_once('=')
            .ok_or_else(|| bad("write NAME=DIRECT_URL[,NGINX_URL]"))?;
        let binary = parse_targets("--target", &[name.to_string()])?[0];
        let (direct, via_nginx) = match urls.split_once(',') {
            Some((direct, via)) => (direct, Some(via.to_string())),
            None => (urls, None),
        };
        for url in std::iter::once(direct).chain(via_nginx.as_deref()) {
            crate::externals::address_of(url).map_err(|why| bad(&why))?;
        }
        targets.push(remote::DescribedTarget::new(
            binary,
            direct.to_string(),
            via_nginx,
            Vec::new(),
        ));
    }
    if targets.is_empty() {
        return Err(UsageError("describe needs at least one --target".into()).into());
    }
    shared::DatabaseUrl::parse(&args.database_url)
        .map_err(|e| UsageError(format!("--database-url: {e}")))?;
    let description = remote::Description::new(
        args.host.clone(),
        args.database_url.clone(),
        args.upstream_url.clone(),
        targets,
    );
    let token = args.token.token()?;
    let printed = token.as_str().to_string();
    let _server = remote::StatusServer::serve(args.listen, token, description)?;
    println!(
        "Serving http://{}/stack.json to the bearers of its token; from the load host: bench run --remote http://{printed}@{}:{}/stack.json",
        args.listen,
        args.host,
        args.listen.port()
    );
    while !interrupted.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(ExitCode::SUCCESS)
}
