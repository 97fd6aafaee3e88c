//! Debian's chromium, headless, driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: JSON messages ending in a NUL byte, chromium reading fd 3 and
//! writing fd 4). Enough of the protocol to load a page with scripting on or off, collect what
//! it logs, read its DOM, run an expression in it, and take a screenshot with the command
//! line's `--screenshot`.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// chromium, as Debian installs it (`scripts/install-deps --browser`).
pub fn chromium() -> PathBuf {
    let path = PathBuf::from("/usr/bin/chromium");
    assert!(
        path.exists(),
        "no /usr/bin/chromium: run scripts/install-deps --browser (it installs Debian's chromium)"
    );
    path
}

/// How long one protocol command may take.
const WAIT: Duration = Duration::from_secs(60);

/// A page as a browser made it.
pub struct Loaded {
    /// The document's HTML after its scripts ran (if they could).
    pub dom: String,
    /// Console messages, uncaught exceptions and errors the browser logged.
    pub console: Vec<String>,
    /// The value of `evaluate` run in the page, when it was given.
    pub evaluated: Option<Value>,
}

/// One headless browser.
pub struct Browser {
    child: Child,
    to: std::fs::File,
    from: Receiver<Value>,
    next_id: u64,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors that we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just opened and nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    pub fn start() -> Browser {
        let (chromium_reads, we_write) = pipe();
        let (we_read, chromium_writes) = pipe();
        let (r, w) = (chromium_reads.as_raw_fd(), chromium_writes.as_raw_fd());
        let mut command = Command::new(chromium());
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                "--window-size=1280,2000",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: fcntl and dup2 are async-signal-safe; the closure touches only the two
        // descriptors. Each is first copied above 4, so that neither is 3 or 4 already (dup2
        // onto itself would keep close-on-exec) nor overwritten by the other's dup2.
        unsafe {
            command.pre_exec(move || {
                let (r, w) = (
                    libc::fcntl(r, libc::F_DUPFD_CLOEXEC, 10),
                    libc::fcntl(w, libc::F_DUPFD_CLOEXEC, 10),
                );
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("chromium starts");
        drop((chromium_reads, chromium_writes));
        let (tx, rx) = channel();
        let reader = std::fs::File::from(we_read);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).unwrap_or(0) > 0 {
                message.pop_if(|b| *b == 0);
                if let Ok(value) = serde_json::from_slice::<Value>(&message) {
                    if tx.send(value).is_err() {
                        break;
                    }
                }
                message.clear();
            }
        });
        Browser {
            child,
            to: std::fs::File::from(we_write),
            from: rx,
            next_id: 0,
        }
    }

    /// Sends a command (to a page's session when given) and waits for its result; events
    /// that arrive meanwhile go to `events`.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        events: &mut Vec<Value>,
    ) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).expect("chromium takes commands");
        let deadline = Instant::now() + WAIT;
        loop {
            let reply = self.next(deadline, method);
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
            events.push(reply);
        }
    }

    /// The next message from chromium, before `deadline` (waiting for `what`).
    fn next(&self, deadline: Instant, what: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        self.from
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("chromium: nothing for {what} within {WAIT:?}"))
    }

    /// Waits for the event `method` of `session`, keeping the others.
    fn wait_event(&mut self, session: &str, method: &str, events: &mut Vec<Value>) {
        let found = |e: &Value| e["method"] == method && e["sessionId"] == session;
        if events.iter().any(found) {
            return;
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let event = self.next(deadline, method);
            let done = found(&event);
            events.push(event);
            if done {
                return;
            }
        }
    }

    /// Loads `page` in a new tab with scripting on or off, then runs `evaluate` (a JavaScript
    /// expression, from DevTools, so it runs even with the page's scripting off).
    pub fn load(&mut self, page: &Path, script: bool, evaluate: Option<&str>) -> Loaded {
        let mut events = Vec::new();
        let target = self.call(
            None,
            "Target.createTarget",
            json!({"url": "about:blank"}),
            &mut events,
        );
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
            &mut events,
        );
        let session = attached["sessionId"].as_str().unwrap().to_string();
        let s = Some(session.as_str());
        for method in ["Page.enable", "Runtime.enable", "Log.enable"] {
            self.call(s, method, json!({}), &mut events);
        }
        if !script {
            self.call(
                s,
                "Emulation.setScriptExecutionDisabled",
                json!({"value": true}),
                &mut events,
            );
        }
        let url = format!("file://{}", page.display());
        self.call(s, "Page.navigate", json!({"url": url}), &mut events);
        self.wait_event(&session, "Page.loadEventFired", &mut events);
        let evaluated = evaluate.map(|expression| {
            let result = self.call(
                s,
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
                &mut events,
            );
            result["result"]["value"].clone()
        });
        let document = self.call(s, "DOM.getDocument", json!({"depth": 0}), &mut events);
        let html = self.call(
            s,
            "DOM.getOuterHTML",
            json!({"nodeId": document["root"]["nodeId"]}),
            &mut events,
        );
        self.call(
            None,
            "Target.closeTarget",
            json!({"targetId": target["targetId"]}),
            &mut events,
        );
        let console = events
            .iter()
            .filter(|e| e["sessionId"] == session.as_str())
            .filter(|e| {
                matches!(
                    e["method"].as_str(),
                    Some("Runtime.consoleAPICalled" | "Runtime.exceptionThrown")
                ) || (e["method"] == "Log.entryAdded" && e["params"]["entry"]["level"] == "error")
            })
            .map(Value::to_string)
            .collect();
        Loaded {
            dom: html["outerHTML"].as_str().unwrap_or_default().to_string(),
            console,
            evaluated,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A screenshot of `page` as `png` (1280 × 2000), for a person to look at.
pub fn screenshot(page: &Path, png: &Path) {
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,2000",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()));
    let (output, _) = crate::common::run_within(&mut command, Duration::from_secs(120));
    let size = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "no screenshot of {}: {}",
        page.display(),
        super::show(&output)
    );
}
