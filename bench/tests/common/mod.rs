//! What the harness tests and the peers' tests share: running `bench` (never without a
//! deadline), showing its output, a fresh results folder, and reading a results file.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest any one `bench` command of the tests may take (the longest takes about two
/// minutes); past it the test fails, saying so.
pub const BENCH_LIMIT: Duration = Duration::from_secs(900);

/// Runs the built `bench` with `args`, on its own stack (no `DATABASE_URL` from outside),
/// within [`BENCH_LIMIT`].
pub fn bench(args: &[&str]) -> Output {
    bench_with_pid(args).0
}

/// [`bench`], and the pid it ran as.
pub fn bench_with_pid(args: &[&str]) -> (Output, u32) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bench"));
    command.args(args).env_remove("DATABASE_URL");
    run_within(&mut command, BENCH_LIMIT)
}

/// A `bench` command line, written as what it asks for:
/// `Bench::new("run").scenario("quick").targets("tokio-axum").short("1s").out(&dir).output()`.
/// [`Bench::arg`] and [`Bench::flag`] add any other.
#[derive(Clone, Debug)]
pub struct Bench {
    args: Vec<String>,
}

impl Bench {
    /// `bench COMMAND`.
    pub fn new(command: &str) -> Bench {
        Bench {
            args: vec![command.to_string()],
        }
    }

    /// A positional argument (compare's A and B, report's folders).
    pub fn positional(mut self, value: impl AsRef<str>) -> Bench {
        self.args.push(value.as_ref().to_string());
        self
    }

    /// `FLAG VALUE`.
    pub fn arg(mut self, flag: &str, value: impl AsRef<str>) -> Bench {
        self.args.push(flag.to_string());
        self.args.push(value.as_ref().to_string());
        self
    }

    /// A flag without a value (`--no-verify`).
    pub fn flag(mut self, flag: &str) -> Bench {
        self.args.push(flag.to_string());
        self
    }

    pub fn scenario(self, name: &str) -> Bench {
        self.arg("--scenario", name)
    }

    /// `--targets`, comma-separated.
    pub fn targets(self, names: &str) -> Bench {
        self.arg("--targets", names)
    }

    /// A short measured load and no warm-up: `--duration D --warmup 0s`.
    pub fn short(self, duration: &str) -> Bench {
        self.arg("--duration", duration).arg("--warmup", "0s")
    }

    pub fn out(self, dir: &Path) -> Bench {
        self.arg("--out", dir.to_str().expect("a UTF-8 path"))
    }

    pub fn no_verify(self) -> Bench {
        self.flag("--no-verify")
    }

    pub fn args(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }

    /// Runs it, as [`bench`].
    pub fn output(&self) -> Output {
        bench(&self.args())
    }

    /// Runs it, as [`bench_with_pid`].
    pub fn output_with_pid(&self) -> (Output, u32) {
        bench_with_pid(&self.args())
    }
}

/// Runs `command` to its end, as `output()` does, but within `limit`: past it the command is
/// asked to stop (SIGTERM to its process group: `bench` then stops its stack), killed 15 s
/// later, and the test fails naming the command, the limit and the last lines it wrote.
/// Returns its output and its pid.
pub fn run_within(command: &mut Command, limit: Duration) -> (Output, u32) {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pid = child.id();
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        let mut pipe = pipe.expect("a piped stream");
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send(bytes);
        });
        rx
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    // What a stream said: once the process is gone its pipes close, unless something it
    // started still holds them, which the wait also bounds.
    let take = |rx: mpsc::Receiver<Vec<u8>>| {
        rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            panic!("{what} exited, but something it started still holds its output open after 60 s")
        })
    };
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            let output = Output {
                status,
                stdout: take(stdout),
                stderr: take(stderr),
            };
            return (output, pid);
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let group = -(pid as libc::pid_t);
    // SAFETY: signals to the process group this function started.
    unsafe { libc::kill(group, libc::SIGTERM) };
    let grace = Instant::now() + Duration::from_secs(15);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above.
    unsafe { libc::kill(group, libc::SIGKILL) };
    let _ = child.wait();
    let said = stderr
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    let said = String::from_utf8_lossy(&said);
    let tail: Vec<&str> = said.lines().rev().take(20).collect();
    panic!(
        "{what} did not finish within {limit:?}; stopped it. The last lines it wrote:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}

/// A fresh folder for one test's results, under cargo's temporary folder.
pub fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// A command's status and output, for an assertion's message.
pub fn show(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
