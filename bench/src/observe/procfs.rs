//! What the kernel knows about a process: CPU time and memory, read from `/proc`.
//!
//! CPU is `utime + stime` of a process (all its threads) and, for PostgreSQL, nginx and an
//! external server's process tree, of its descendants too (backends, workers), read before and
//! after the measured load. Descendants that exit during the load take their CPU with them;
//! with pooled connections and long-lived workers they do not.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Clock ticks per second for `/proc/*/stat` times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// (ppid, utime + stime in ticks) of `pid`.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// Every live process on this host: its pid, its parent's, and its CPU so far in ticks.
fn processes() -> Vec<(u32, u32, u64)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (ppid, ticks) = stat(pid)?;
            Some((pid, ppid, ticks))
        })
        .collect()
}

/// `pid` and all its descendants among `all` (children, their children, …), `pid` first,
/// each with its ticks; empty when `pid` is not among them.
fn tree_in(all: &[(u32, u32, u64)], pid: u32) -> Vec<(u32, u64)> {
    let Some(&(_, _, ticks)) = all.iter().find(|p| p.0 == pid) else {
        return Vec::new();
    };
    let mut out = vec![(pid, ticks)];
    let mut i = 0;
    // Each pass adds the children of one member; a process is its parent's child only once,
    // so this ends after at most as many passes as there are processes.
    while i < out.len() && i <= all.len() {
        let parent = out[i].0;
        out.extend(
            all.iter()
                .filter(|&&(child, ppid, _)| ppid == parent && child != parent)
                .map(|&(child, _, ticks)| (child, ticks)),
        );
        i += 1;
    }
    out
}

/// `pid` and all its live descendants (children, their children, …), `pid` first.
pub fn tree(pid: u32) -> Vec<u32> {
    tree_in(&processes(), pid)
        .into_iter()
        .map(|(member, _)| member)
        .collect()
}

/// CPU seconds used so far by `pid` and, with `children`, all its live descendants (a
/// gunicorn master and its workers, PostgreSQL's backends, nginx's workers), from one reading
/// of `/proc`.
pub fn cpu_seconds(pid: u32, children: bool) -> Option<f64> {
    let ticks = if children {
        let members = tree_in(&processes(), pid);
        if members.is_empty() {
            return None;
        }
        members.iter().map(|&(_, ticks)| ticks).sum()
    } else {
        stat(pid)?.1
    };
    Some(ticks as f64 / ticks_per_second())
}

/// Server-side TCP connections on local `port` (IPv4 and IPv6, this network namespace): how
/// many wait in a listener's accept queue, and how many are open (not listening, not in
/// TIME_WAIT), from `/proc/net/tcp` and `/proc/net/tcp6`.
pub fn port_connections(port: u16) -> (u64, u64) {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|table| port_connections_in(&table, port))
        .fold((0, 0), |(q, o), (dq, d_o)| (q + dq, o + d_o))
}

/// [`port_connections`] of one table's text.
fn port_connections_in(table: &str, port: u16) -> (u64, u64) {
    const LISTEN: &str = "0A";
    const TIME_WAIT: &str = "06";
    let (mut queued, mut open) = (0, 0);
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state), Some(queues)) =
            (fields.get(1), fields.get(3), fields.get(4))
        else {
            continue;
        };
        let local_port = local
            .rsplit(':')
            .next()
            .and_then(|hex| u16::from_str_radix(hex, 16).ok());
        if local_port != Some(port) {
            continue;
        }
        match *state {
            LISTEN => {
                // A listener's rx_queue is its accept queue's length.
                let rx = queues
                    .split(':')
                    .nth(1)
                    .and_then(|h| u64::from_str_radix(h, 16).ok());
                queued += rx.unwrap_or(0);
            }
            TIME_WAIT => {}
            _ => open += 1,
        }
    }
    (queued, open)
}

/// What a process and its descendants hold at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// MiB: resident memory (`VmRSS`), summed over the processes: a page that a master
    /// shares with its forked workers counts in each.
    pub rss_mib: f64,
    /// MiB: proportional resident memory (`Pss`), summed over the processes: a shared page
    /// counts once, split between its sharers. `None` where it cannot be read (a remote
    /// stack's samples).
    pub pss_mib: Option<f64>,
    pub threads: u64,
    pub processes: u64,
}

impl Usage {
    /// The larger of each figure (a peak over samples).
    pub fn max(self, other: Usage) -> Usage {
        Usage {
            rss_mib: self.rss_mib.max(other.rss_mib),
            pss_mib: match (self.pss_mib, other.pss_mib) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            threads: self.threads.max(other.threads),
            processes: self.processes.max(other.processes),
        }
    }
}

/// Proportional resident memory of `pid` in KiB, from `/proc/PID/smaps_rollup`.
fn pss_kib(pid: u32) -> Option<u64> {
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The memory and threads of `pid` alone, as one process.
pub fn usage(pid: u32) -> Option<Usage> {
    let (rss_mib, threads) = rss_and_threads(pid)?;
    Some(Usage {
        rss_mib,
        pss_mib: pss_kib(pid).map(|kib| kib as f64 / 1024.0),
        threads,
        processes: 1,
    })
}

/// The memory, threads and processes of `pid` and all its descendants.
pub fn tree_usage(pid: u32) -> Option<Usage> {
    let members = tree(pid);
    if members.len() == 1 {
        return usage(pid);
    }
    let mut usage = Usage {
        pss_mib: Some(0.0),
        ..Usage::default()
    };
    for &member in &members {
        // A worker that exits between the listing and the read is left out.
        let (Some((rss, threads)), Some(pss)) = (rss_and_threads(member), pss_kib(member)) else {
            continue;
        };
        usage.rss_mib += rss;
        usage.pss_mib = usage.pss_mib.map(|sum| sum + pss as f64 / 1024.0);
        usage.threads += threads;
        usage.processes += 1;
    }
    (usage.processes > 0).then_some(usage)
}

/// The descriptors `pid` has open (the entries of `/proc/PID/fd`).
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Resident memory of `pid` in MiB, and its thread count.
pub fn rss_and_threads(pid: u32) -> Option<(f64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let value = |key: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((value("VmRSS:")? as f64 / 1024.0, value("Threads:")?))
}

/// A process's resident anonymous memory, split by where it is (KiB).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AnonSplit {
    /// Stacks: each thread's, and each coroutine's. A stack is a private writable anonymous
    /// mapping with its guard right below it (an inaccessible mapping of at most 64 KiB that
    /// ends where the stack starts), which is how glibc lays out a thread's stack and the
    /// generator crate a may coroutine's; plus the main thread's `[stack]`. Only the pages
    /// touched are resident.
    pub stack_kib: u64,
    /// Everything else anonymous: malloc's heap and arenas, and other anonymous mappings.
    pub heap_kib: u64,
}

/// Splits the resident anonymous memory of `pid` into stacks and the rest, from
/// `/proc/PID/smaps`.
pub fn anon_split(pid: u32) -> Option<AnonSplit> {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    Some(split_smaps(&smaps))
}

fn split_smaps(smaps: &str) -> AnonSplit {
    /// Where the mapping being read goes, and the previous mapping's end if it was a guard.
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Stack,
        Heap,
        Other,
    }
    let mut split = AnonSplit::default();
    let mut kind = Kind::Other;
    let mut guard_end: Option<u64> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
            else {
                continue;
            };
            let perms = fields.next().unwrap_or("");
            let inode = fields.nth(2).unwrap_or("0");
            let path = fields.next().unwrap_or("");
            let anonymous =
                inode == "0" && (path.is_empty() || path == "[heap]" || path == "[stack]");
            kind = if !anonymous || !perms.starts_with("rw") {
                Kind::Other
            } else if path == "[stack]" || (path.is_empty() && guard_end == Some(start)) {
                Kind::Stack
            } else {
                Kind::Heap
            };
            guard_end = (perms.starts_with("---") && end - start <= 64 * 1024).then_some(end);
        } else if first == "Rss:" {
            let kib: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            match kind {
                Kind::Stack => split.stack_kib += kib,
                Kind::Heap => split.heap_kib += kib,
                Kind::Other => {}
            }
        }
    }
    split
}

/// Peaks of a process tree's memory, threads and processes, sampled on a thread.
pub struct MemorySampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Usage>,
}

impl MemorySampler {
    /// Samples `pid` and its descendants (`Usage` of the whole tree).
    pub fn start(pid: u32, interval: Duration) -> MemorySampler {
        MemorySampler::start_with(interval, move || tree_usage(pid))
    }

    /// Samples `read` every `interval`: this host's /proc, or a remote stack's samples.
    pub fn start_with(
        interval: Duration,
        mut read: impl FnMut() -> Option<Usage> + Send + 'static,
    ) -> MemorySampler {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut peak = Usage::default();
                loop {
                    if let Some(now) = read() {
                        peak = peak.max(now);
                    }
                    if stop.load(Ordering::SeqCst) {
                        return peak;
                    }
                    std::thread::sleep(interval);
                }
            }
        });
        MemorySampler { stop, handle }
    }

    /// The peak of each figure.
    pub fn finish(self) -> Usage {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap_or_default()
    }
}

/// Pins every thread of `pid` to `cpus`; threads it starts later inherit the mask.
pub fn pin(pid: u32, cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    for entry in fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: a valid set of the size we pass.
        let rc =
            unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The CPUs `pid` may run on (its affinity), `None` when it cannot be read.
pub fn allowed_cpus(pid: u32) -> Option<u32> {
    // SAFETY: cpu_set_t is plain data, and sched_getaffinity writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::sched_getaffinity(pid as i32, std::mem::size_of::<libc::cpu_set_t>(), &mut set)
    };
    // SAFETY: a set sched_getaffinity filled.
    (rc == 0).then(|| unsafe { libc::CPU_COUNT(&set) } as u32)
}

/// The time a process's threads spent ready to run but waiting for a CPU (the kernel's run
/// delay, `/proc/PID/task/TID/schedstat`), from samples: each thread's last sample counts,
/// so what a thread waited after the last sample before it exited is not counted.
#[derive(Default)]
pub struct RunDelay {
    waited_ns: std::collections::HashMap<u32, u64>,
}

impl RunDelay {
    pub fn sample(&mut self, pid: u32) {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            return;
        };
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let waited = fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok());
            if let Some(waited) = waited {
                let kept = self.waited_ns.entry(tid).or_default();
                *kept = (*kept).max(waited);
            }
        }
    }

    pub fn seconds(&self) -> f64 {
        self.waited_ns.values().sum::<u64>() as f64 / 1e9
    }
}

/// The CPU seconds the calling thread has used.
pub fn thread_cpu_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

/// The CPU count this process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs the load tool on every CPU but 0 (the target's, with `--pin`).
pub fn pin_command(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let cpus = cpus();
    if cpus < 2 {
        return;
    }
    // SAFETY: only async-signal-safe calls (sched_setaffinity) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for cpu in 1..cpus {
                libc::CPU_SET(cpu, &mut set);
            }
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ports_queue_and_open_connections_are_read_from_the_tcp_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:D432 08 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0100007F:1F90 0100007F:D433 06 00000000:00000000 00:00000000 00000000     0        0 0 0 0 0 0 0 0 0
   4: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1
";
        // Port 0x1F90 = 8080: 3 in the accept queue, an established and a closing one open;
        // TIME_WAIT and the client's side (remote port 8080) are not counted.
        assert_eq!(port_connections_in(table, 8080), (3, 2));
        assert_eq!(port_connections_in(table, 9), (0, 0));
    }

    #[test]
    fn smaps_are_split_into_stacks_and_heap() {
        let smaps = "\
55d4a000-55d4b000 r-xp 00001000 08:01 1234 /usr/bin/target
Rss:                   4 kB
55d4c000-55d6d000 rw-p 00000000 00:00 0 [heap]
Rss:                  12 kB
7f0000000000-7f0000001000 ---p 00000000 00:00 0
Rss:                   0 kB
7f0000001000-7f0000011000 rw-p 00000000 00:00 0
Rss:                   8 kB
7f0000011000-7f0000021000 rw-p 00000000 00:00 0
Rss:                  20 kB
7f1000000000-7f1000400000 ---p 00000000 00:00 0
Rss:                   0 kB
7f1000400000-7f1000500000 rw-p 00000000 00:00 0
Rss:                  40 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
Rss:                  16 kB
";
        // The 64 KiB mapping after a guard page is a stack; the one after it, and the one
        // after a 4 MiB reservation, are heap.
        assert_eq!(
            split_smaps(smaps),
            AnonSplit {
                stack_kib: 8 + 16,
                heap_kib: 12 + 20 + 40,
            }
        );
    }

    #[test]
    fn a_thread_that_touches_its_stack_grows_the_stack_part() {
        let pid = std::process::id();
        let (touched, done) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let (touched_tx, touched_rx) = touched;
        let (done_tx, done_rx) = done;
        let before = anon_split(pid).expect("smaps");
        let thread = std::thread::Builder::new()
            .stack_size(4 << 20)
            .spawn(move || {
                // 1 MiB written on this thread's stack, held until the test has looked.
                let mut block = [0u8; 1 << 20];
                for (i, b) in block.iter_mut().enumerate() {
                    *b = i as u8;
                }
                std::hint::black_box(&mut block);
                touched_tx.send(()).unwrap();
                done_rx.recv().ok();
                block[12345]
            })
            .unwrap();
        touched_rx.recv().unwrap();
        let during = anon_split(pid).expect("smaps");
        done_tx.send(()).unwrap();
        thread.join().unwrap();
        let grown = during.stack_kib.saturating_sub(before.stack_kib);
        assert!(
            grown >= 1024,
            "stacks grew by {grown} KiB: {before:?} → {during:?}"
        );
    }

    #[test]
    fn this_process_has_cpu_time_memory_and_threads() {
        let pid = std::process::id();
        // Burn a little CPU so the counter moves past zero.
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_add(i ^ (x >> 3));
        }
        assert!(x != 1);
        assert!(cpu_seconds(pid, false).unwrap() > 0.0);
        let (rss, threads) = rss_and_threads(pid).unwrap();
        assert!(rss > 1.0 && threads >= 1);
        assert!(cpu_seconds(u32::MAX, false).is_none());
    }

    #[test]
    fn a_process_tree_counts_every_descendant() {
        // A shell with two children, one of which has a child of its own: four processes.
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sh -c 'sleep 30 & wait' & wait"])
            .spawn()
            .expect("sh");
        let pid = shell.id();
        let mut members = Vec::new();
        for _ in 0..100 {
            members = tree(pid);
            if members.len() == 4 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(members.len(), 4, "{members:?}");
        assert_eq!(members[0], pid);
        let usage = tree_usage(pid).expect("usage");
        assert_eq!((usage.processes, usage.threads), (4, 4), "{usage:?}");
        assert!(
            usage.rss_mib > 0.0 && usage.pss_mib.is_some_and(|p| p > 0.0),
            "{usage:?}"
        );
        // One process alone is its RSS, as for a target.
        let me = tree_usage(std::process::id()).unwrap();
        assert!(me.processes >= 1 && me.rss_mib > 0.0);
        assert!(cpu_seconds(pid, true).is_some());
        for member in members.iter().rev() {
            // SAFETY: kill has no memory preconditions; these are the test's own processes.
            unsafe { libc::kill(*member as i32, libc::SIGKILL) };
        }
        let _ = shell.wait();
    }
}
