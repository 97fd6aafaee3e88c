//! `bench client` as values: the client models (how N requests are made), the plan, and a
//! model's result row with its bound.

use std::time::Duration;

use anyhow::{bail, Result};
use serde::Serialize;

/// How the N requests are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "model", content = "threads")]
pub enum Model {
    /// One keep-alive connection, blocking, one request after another.
    Sequential,
    /// T OS threads, each with its own keep-alive connection, taking the next request.
    Threads(u32),
    /// All N requests as futures joined on one tokio runtime, one pooled hyper-util client.
    TokioGather,
    /// N may coroutines on the cooperative client.
    MayGreen,
}

impl Model {
    pub fn name(self) -> String {
        match self {
            Model::Sequential => "sequential".into(),
            Model::Threads(t) => format!("threads-{t}"),
            Model::TokioGather => "tokio-gather".into(),
            Model::MayGreen => "may-green".into(),
        }
    }

    /// The least wall time the model can take for `n` requests of `delay`.
    pub fn bound(self, n: u32, delay: Duration) -> Duration {
        match self {
            Model::Sequential => delay * n,
            Model::Threads(t) => delay * n.div_ceil(t.max(1)),
            Model::TokioGather | Model::MayGreen => delay,
        }
    }
}

/// One model's result: the median round's wall time, and the spread.
#[derive(Clone, Debug, Serialize)]
pub struct ClientRow {
    pub model: String,
    pub requests: u32,
    pub delay_ms: u32,
    /// Wall time for the N requests: the median of the rounds, and their min and max.
    pub wall_s: f64,
    pub wall_s_min: f64,
    pub wall_s_max: f64,
    pub requests_per_sec: f64,
    /// The model's least wall time (N × d, ⌈N / T⌉ × d, or d).
    pub bound_s: f64,
    /// bound / wall time (1 is the model at its best).
    pub efficiency: f64,
    /// Requests that did not get a 200 from nginx, over every round.
    pub errors: u64,
    /// The most client connections nginx held at once while the model ran (stub_status).
    pub peak_connections: i64,
    /// This process's peak resident memory and threads while the model ran.
    pub rss_peak_mib: f64,
    pub threads_peak: u64,
}

/// Parses `--threads 10,20`.
pub fn models(threads: &[u32]) -> Result<Vec<Model>> {
    if threads.contains(&0) {
        bail!("--threads: a thread count is at least 1");
    }
    let mut models = vec![Model::Sequential];
    models.extend(threads.iter().map(|&t| Model::Threads(t)));
    models.extend([Model::TokioGather, Model::MayGreen]);
    Ok(models)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_model_has_its_bound() {
        let d = Duration::from_millis(100);
        assert_eq!(Model::Sequential.bound(20, d), Duration::from_secs(2));
        assert_eq!(Model::Threads(10).bound(20, d), Duration::from_millis(200));
        assert_eq!(Model::Threads(3).bound(20, d), Duration::from_millis(700));
        assert_eq!(Model::TokioGather.bound(20, d), d);
        assert_eq!(Model::MayGreen.bound(100, d), d);
        let names: Vec<String> = models(&[10, 20])
            .unwrap()
            .into_iter()
            .map(Model::name)
            .collect();
        assert_eq!(
            names,
            [
                "sequential",
                "threads-10",
                "threads-20",
                "tokio-gather",
                "may-green"
            ]
        );
        assert!(models(&[0]).is_err());
    }
}
