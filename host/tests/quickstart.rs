//! `docs/quickstart.md`, run from top to bottom: `weir serve` with no configuration in a fresh folder (so a fresh
//! data dir), then every `$ ` command of the page's ```console blocks in one bash session (so `export`s and
//! background jobs carry over), each command's output (stdout and stderr) compared with the lines under it.
//!
//! What the test changes, and only this: the gateway listens on free ports (`--listen`/`--admin` with port 0), so
//! `127.0.0.1:8080` and `127.0.0.1:9901` in the commands are replaced by those; `weir` on the `PATH` is the binary
//! under test; and the `greeter` crate the page creates builds into `target/quickstart-greeter` of this checkout
//! (a symbolic link as `greeter/target`), so runs after the first reuse its compiled dependencies.
//!
//! In an expected output, `[...]` stands for any text within a line, and a line holding only `[...]` for any
//! number of lines.

mod common;

use common::{fenced_blocks, text, Served, WEIR};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const WILDCARD: &str = "[...]";

/// One `$ ` command and the output the page shows under it.
struct Step {
    command: String,
    expected: Vec<String>,
}

fn steps(page: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for (info, body) in fenced_blocks(page) {
        if info != "console" {
            continue;
        }
        let first = steps.len();
        for line in body.lines() {
            match line.strip_prefix("$ ") {
                Some(command) => steps.push(Step { command: command.to_string(), expected: Vec::new() }),
                None => {
                    assert!(steps.len() > first, "a console block has output before its first command: {line:?}");
                    steps.last_mut().expect("a step").expected.push(line.trim_end().to_string());
                }
            }
        }
    }
    steps
}

/// Whether `line` matches `pattern`, in which each `[...]` stands for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split(WILDCARD).collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || line.len() < first.len() + last.len() || !line.ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `lines` match `patterns`, a pattern line of only `[...]` standing for any number of lines.
fn lines_match(patterns: &[String], lines: &[&str]) -> bool {
    match patterns.split_first() {
        None => lines.is_empty(),
        Some((p, rest)) if p == WILDCARD => (0..=lines.len()).any(|skip| lines_match(rest, &lines[skip..])),
        Some((p, rest)) => lines.split_first().is_some_and(|(l, more)| line_matches(p, l) && lines_match(rest, more)),
    }
}

fn trimmed<T: AsRef<str>>(lines: &[T]) -> &[T] {
    let mut end = lines.len();
    while end > 0 && lines[end - 1].as_ref().trim().is_empty() {
        end -= 1;
    }
    &lines[..end]
}

#[test]
fn wildcards_match_as_documented() {
    for (pattern, line, matches) in [
        ("abc", "abc", true),
        ("abc", "abd", false),
        ("a[...]c", "abbbc", true),
        ("a[...]c", "ac", true),
        ("a[...]c", "ab", false),
        ("[...] x 200", "  17 x 200", true),
        ("id\":\"[...]\",\"n\":[...]}", "id\":\"q1\",\"n\":3}", true),
        ("a[...]b[...]c", "a-c-b", false),
    ] {
        assert_eq!(line_matches(pattern, line), matches, "{pattern:?} against {line:?}");
    }
    let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&p(&["[...]"]), &[]));
    assert!(lines_match(&p(&["a", "[...]", "z"]), &["a", "b", "c", "z"]));
    assert!(!lines_match(&p(&["a", "[...]", "z"]), &["a", "b"]));
    assert!(!lines_match(&p(&["a"]), &["a", "b"]));
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ is in the workspace").to_path_buf()
}

#[test]
fn quickstart_runs_as_written() {
    let root = workspace();
    let page = std::fs::read_to_string(root.join("docs/quickstart.md")).expect("docs/quickstart.md");
    let steps = steps(&page);
    assert!(steps.len() >= 20, "the quickstart has its steps ({} found)", steps.len());

    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let mut served = Served::start(
        &["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-format", "json"],
        dir.path(),
        &[],
    );
    let seeded = served.wait_for_within("seeded the registry", Duration::from_secs(120));
    assert!(seeded.contains("jwt-auth@0.1.0") && seeded.contains("chat"), "{seeded}");
    let listen = served.listening("default").to_string();
    let admin = served.admin_url();
    eprintln!("weir serve (embedded demo) ready in {:.1} s", started.elapsed().as_secs_f64());

    let greeter_target = root.join("target/quickstart-greeter");
    std::fs::create_dir_all(&greeter_target).expect("greeter target dir");
    let mut script = String::from("exec 2>&1\n");
    for (i, step) in steps.iter().enumerate() {
        let mut command = step
            .command
            .replace("127.0.0.1:8080", &listen)
            .replace("127.0.0.1:9901", admin.trim_start_matches("http://"));
        if command.starts_with("weir filter new greeter") {
            command.push_str(&format!(" && ln -s {} greeter/target", greeter_target.display()));
        }
        script.push_str(&format!("echo '@@step {i}@@'\n{command}\necho \"@@status {i} $?@@\"\n"));
    }
    let bin_dir = Path::new(WEIR).parent().expect("the weir binary's folder");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("WEIR_ADMIN_URL", &admin)
        .env_remove("WEIR_ADMIN_TOKEN")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run bash");
    let output = text(&out.stdout);

    let mut checked = 0;
    for (i, step) in steps.iter().enumerate() {
        let begin = format!("@@step {i}@@\n");
        let from = output.find(&begin).unwrap_or_else(|| panic!("step {i} ({}) did not run:\n{output}", step.command));
        let rest = &output[from + begin.len()..];
        let status_at = rest.find(&format!("@@status {i} ")).unwrap_or_else(|| panic!("step {i} did not end"));
        let status = rest[status_at..].split_whitespace().nth(2).unwrap_or_default().trim_end_matches("@@");
        let got: Vec<&str> = rest[..status_at].lines().map(str::trim_end).collect();
        assert_eq!(status, "0", "`{}` exited with {status}; it printed:\n{}", step.command, got.join("\n"));
        let (want, got) = (trimmed(&step.expected), trimmed(&got));
        assert!(
            lines_match(want, got),
            "the output of `{}`\n--- the page shows ---\n{}\n--- it printed ---\n{}",
            step.command,
            want.join("\n"),
            got.join("\n")
        );
        checked += 1;
    }
    eprintln!("{checked} quickstart steps matched in {:.1} s", started.elapsed().as_secs_f64());
}
