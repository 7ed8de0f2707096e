//! What the tests that run the `weir` binary share: running it once, and a `weir serve` child whose log
//! lines can be waited for.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const WEIR: &str = env!("CARGO_BIN_EXE_weir");

pub fn weir(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(WEIR).args(args).current_dir(cwd).env_remove("WEIR_ADMIN_TOKEN").output().expect("run weir")
}

/// Runs `weir ARGS` in `cwd` against `admin_url` (token from ./weir-data/admin-token, the default).
pub fn cli(cwd: &Path, admin_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(WEIR)
        .args(args)
        .current_dir(cwd)
        .env("WEIR_ADMIN_URL", admin_url)
        .env_remove("WEIR_ADMIN_TOKEN")
        .output()
        .expect("run weir")
}

/// A `weir serve` child with its stderr lines forwarded to a channel.
pub struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    pub fn start(args: &[&str], cwd: &Path, envs: &[(&str, &str)]) -> Served {
        let mut cmd = Command::new(WEIR);
        cmd.args(args).current_dir(cwd).env_remove("WEIR_ADMIN_TOKEN").stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn weir");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Served { child, lines, seen: Vec::new() }
    }

    /// Waits (up to 20 s) for a log line containing `needle` and returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        self.wait_for_within(needle, Duration::from_secs(20))
    }

    /// Waits up to `bound` for a log line containing `needle` and returns it.
    pub fn wait_for_within(&mut self, needle: &str, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no log line containing {needle:?}; saw:\n{}", self.seen.join("\n"));
    }

    /// The address from the JSON "listening" line of `listener`.
    pub fn listening(&mut self, listener: &str) -> SocketAddr {
        let line = self.wait_for(&format!("\"listener\":\"{listener}\""));
        let v: serde_json::Value = serde_json::from_str(&line).expect("json log line");
        v["address"].as_str().expect("address").parse().expect("socket address")
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reap.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The admin API's base URL, from the JSON "admin listening" line.
    pub fn admin_url(&mut self) -> String {
        let line = self.wait_for("admin listening");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json log line");
        format!("http://{}", v["address"].as_str().expect("address"))
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().expect("kill");
        assert!(ok.success());
    }

    pub fn wait_exit(&mut self, bound: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "weir did not exit within {bound:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn write_config(dir: &Path, json: serde_json::Value) -> String {
    let path = dir.join("weir.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json")).expect("write config");
    path.display().to_string()
}

/// The fenced blocks of a Markdown text: (info string, body).
pub fn fenced_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in markdown.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_string(), String::new())),
            (Some(_), Some("")) => blocks.extend(open.take()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// Bytes as text, for exact comparisons of output.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
