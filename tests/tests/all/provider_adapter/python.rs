//! The official `openai` Python package as the client, through Weir to the mock Anthropic, Gemini and Bedrock
//! servers: a plain answer, a streamed answer and a tool call, each parsed by the package without error.
//!
//! The test installs the package itself, once: a venv at `<target dir>/py-openai` (`python3 -m venv`, then
//! `pip install openai==OPENAI_VERSION` from PyPI), reused while its marker file names the pinned version. When
//! that fails the test fails and says why.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use weir_tests::mock_llm::{Answer, Behavior};

use super::{each, pick, Rig};

/// The pinned client version.
const OPENAI_VERSION: &str = "3.54.0";

/// `$CARGO_TARGET_DIR`, else the `target` dir this test binary runs from (`<target>/debug/deps/all-...`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors().nth(3).expect("<target>/<profile>/deps/<binary>").to_path_buf()
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {cmd:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The venv's python, creating the venv and installing the client when needed.
fn python() -> PathBuf {
    let venv = target_dir().join("py-openai");
    let python = venv.join("bin").join("python");
    let marker = venv.join(format!(".weir-openai-{OPENAI_VERSION}"));
    if marker.exists() && python.exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "creating the Python venv (needs python3 with venv)");
    run(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            &format!("openai=={OPENAI_VERSION}"),
        ]),
        "installing the openai package from PyPI",
    );
    std::fs::write(&marker, OPENAI_VERSION).expect("venv marker");
    python
}

/// Runs tests/python/openai_client.py against `base_url` and returns what it printed.
async fn client(python: &Path, base_url: String, scenario: &'static str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join("openai_client.py");
    let python = python.to_path_buf();
    let out =
        tokio::task::spawn_blocking(move || Command::new(python).arg(script).arg(base_url).arg(scenario).output())
            .await
            .expect("join")
            .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the openai client failed on `{scenario}`:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("client output is not JSON ({e}): {stdout}"))
}

#[tokio::test]
async fn official_openai_python_client() {
    let python = tokio::task::spawn_blocking(python).await.expect("venv");
    each(
        pick(&["anthropic", "gemini", "bedrock"]),
        |c| c.name.to_string(),
        move |case| {
            let python = python.clone();
            async move {
                let rig = Rig::start(&case).await;
                let tool_id = match case.name {
                    "anthropic" => "toolu_01Weather",
                    "bedrock" => "tooluse_weather1",
                    _ => "unused",
                };
                let base = format!("http://{}/v1", rig.gw.main());
                let name = case.name;
                // One behaviour per scenario, set just before it: in callout mode the provider also receives the
                // request Weir forwards on its own, which would shift a longer script.

                rig.mock.script(vec![Behavior::Answer(Answer::text("Hello from the mock."))]);
                let plain = client(&python, base.clone(), "plain").await;
                assert_eq!(plain["object"], "chat.completion", "{name}: {plain}");
                assert_eq!(plain["content"], "Hello from the mock.", "{name}: {plain}");
                assert_eq!(plain["finish_reason"], "stop", "{name}: {plain}");
                assert_eq!(plain["usage"]["total_tokens"], 18, "{name}: {plain}");

                rig.mock.script(vec![Behavior::Answer(Answer::text("Streamed to the official client, 世界."))]);
                let stream = client(&python, base.clone(), "stream").await;
                assert_eq!(stream["content"], "Streamed to the official client, 世界.", "{name}: {stream}");
                assert_eq!(stream["finish_reason"], "stop", "{name}: {stream}");
                assert_eq!(stream["usage"]["total_tokens"], 18, "{name}: {stream}");
                assert_eq!(stream["ids"], 1, "{name}: one id per stream: {stream}");
                assert!(stream["chunks"].as_u64().is_some_and(|n| n >= 4), "{name}: {stream}");

                rig.mock.script(vec![Behavior::Answer(Answer::text("").with_tool_call(
                    tool_id,
                    "get_weather",
                    json!({"city": "Paris"}),
                ))]);
                let tool = client(&python, base, "tool").await;
                assert_eq!(tool["finish_reason"], "tool_calls", "{name}: {tool}");
                let calls = tool["tool_calls"].as_array().expect("tool_calls");
                assert_eq!(calls.len(), 1, "{name}: {tool}");
                assert_eq!(calls[0]["type"], "function", "{name}");
                assert_eq!(calls[0]["name"], "get_weather", "{name}");
                assert_eq!(calls[0]["arguments"], json!({"city": "Paris"}), "{name}");
                assert!(calls[0]["id"].as_str().is_some_and(|id| !id.is_empty()), "{name}: {tool}");
                if tool_id != "unused" {
                    assert_eq!(calls[0]["id"], tool_id, "{name}");
                }
                assert_eq!(rig.received().len(), 3, "{name}");
            }
        },
    )
    .await;
}
