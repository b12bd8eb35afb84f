//! A task's processes: started in a process group of their own, watched against a
//! deadline and a cancel flag, and killed as a whole tree.
//!
//! Killing only the child is not enough: a notebook task is `python -m coursekit.run`,
//! which starts a Jupyter kernel *in a new session* (jupyter_client does so to deliver
//! interrupts), which starts a JVM. So the tree is collected first, from the parent
//! links in `/proc`, while the links still exist (a killed parent's children are
//! re-parented and the links are lost), and every member and every process group in it
//! is signalled: SIGTERM, a grace period, then SIGKILL for whatever is left.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How a watched process ended.
#[derive(Debug)]
pub enum Ending {
    Exited(ExitStatus),
    TimedOut,
    Canceled,
}

/// Start `cmd` as the leader of a new process group (so a terminal's Ctrl-C reaches
/// batuta, which decides, and not the task directly).
pub fn spawn(cmd: &mut Command) -> io::Result<Child> {
    cmd.process_group(0).spawn()
}

/// Wait for `child`, killing its tree at `deadline` or when `cancel` is set.
pub fn watch(
    child: &mut Child,
    deadline: Option<Instant>,
    cancel: &AtomicBool,
    grace: Duration,
) -> io::Result<Ending> {
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(status) = child.try_wait()? {
            // The child is gone, but a grandchild it left behind still belongs to the task.
            kill_group(child.id());
            return Ok(Ending::Exited(status));
        }
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        if timed_out || cancel.load(Ordering::SeqCst) {
            kill_tree(child.id(), grace);
            // Reap the direct child so it does not linger as a zombie.
            let _ = child.wait();
            return Ok(if timed_out {
                Ending::TimedOut
            } else {
                Ending::Canceled
            });
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn signal(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions; a stale pid yields ESRCH.
    unsafe { libc::kill(pid, sig) == 0 }
}

fn pgid_of(pid: i32) -> Option<i32> {
    // SAFETY: getpgid(2) only reads the process table.
    let g = unsafe { libc::getpgid(pid) };
    (g > 0).then_some(g)
}

/// Parent links of every process, from `/proc/<pid>/stat` (field 4).
fn parent_links() -> Vec<(i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name (field 2) is in parentheses and may hold spaces or ')'.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut fields = stat[close + 1..].split_whitespace();
        let _state = fields.next();
        if let Some(ppid) = fields.next().and_then(|s| s.parse::<i32>().ok()) {
            out.push((pid, ppid));
        }
    }
    out
}

/// `root` and every process descended from it.
pub fn descendants(root: i32) -> BTreeSet<i32> {
    let links = parent_links();
    let mut tree = BTreeSet::from([root]);
    loop {
        let before = tree.len();
        for &(pid, ppid) in &links {
            if tree.contains(&ppid) {
                tree.insert(pid);
            }
        }
        if tree.len() == before {
            return tree;
        }
    }
}

fn alive(pid: i32) -> bool {
    // A zombie has finished; only its parent's wait is missing.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|c| stat[c + 1..].split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

/// Terminate the process tree rooted at `pid`: SIGTERM to every member and process
/// group, then SIGKILL after `grace` for what is still alive.
pub fn kill_tree(pid: u32, grace: Duration) {
    let Ok(root) = i32::try_from(pid) else {
        return;
    };
    let mut tree = descendants(root);
    let mut groups: BTreeSet<i32> = tree.iter().filter_map(|&p| pgid_of(p)).collect();
    groups.insert(root);
    for &g in &groups {
        signal(-g, libc::SIGTERM);
    }
    for &p in &tree {
        signal(p, libc::SIGTERM);
    }
    let until = Instant::now() + grace;
    while Instant::now() < until && tree.iter().any(|&p| alive(p)) {
        // Children forked during the grace period join the tree.
        for &p in tree.clone().iter() {
            tree.extend(descendants(p));
        }
        thread::sleep(Duration::from_millis(20));
    }
    for &p in tree.clone().iter() {
        tree.extend(descendants(p));
    }
    for &p in &tree {
        if let Some(g) = pgid_of(p) {
            groups.insert(g);
        }
    }
    for &g in &groups {
        signal(-g, libc::SIGKILL);
    }
    for &p in &tree {
        signal(p, libc::SIGKILL);
    }
}

/// After the leader exited: whatever is left in its process group is an orphan of the
/// finished task, and is killed (a task may not leave processes behind).
fn kill_group(pgid: u32) {
    if let Ok(g) = i32::try_from(pgid) {
        signal(-g, libc::SIGKILL);
    }
}
