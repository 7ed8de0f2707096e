//! The same filter written twice, CPU per request side by side: `tests/filters/add_header` (the crates.io
//! `proxy-wasm` 0.2.5 crate) and `sdk/examples/add_header.rs` (the Weir SDK). Each adds one request header and one
//! response header and logs nothing; both are built with the same profile (lto, opt-level s, panic abort).
//!
//! Both run in `weir::harness` (Weir's wasm runtime, in-process): a request is request headers, response headers
//! and the end of the stream (`on_log`, `on_done`, `on_delete`). Rounds alternate the two (and a harness with no
//! filter, the fixed cost of the harness itself); each round times `PER_ROUND` requests of each. Reported: the
//! median over rounds of ns per request, and the SDK's cost over proxy-wasm's, with and without the harness's
//! own cost.
//!
//! Run: `cargo bench -p weir --bench sdk_vs_proxy_wasm` (builds the SDK example for wasm32-wasip1 first).
//! `WEIR_BENCH_ONLY=sdk` (or `proxy-wasm`, `none`) runs one of them alone, for a profiler:
//! `valgrind --tool=callgrind target/release/deps/sdk_vs_proxy_wasm-*`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use weir::harness::{FilterHarness, FilterSpec, Request, Response};

const ROUNDS: usize = 61;
const PER_ROUND: usize = 500;
const WARMUP: usize = 2_000;

/// Builds `sdk/examples/add_header.rs` as the SDK's tests build the examples; returns the `.wasm`.
fn sdk_module() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = workspace.join("target").join("sdk-examples");
    let status = Command::new(env!("CARGO"))
        .current_dir(&workspace)
        .args([
            "build",
            "-p",
            "weir-sdk",
            "--example",
            "add_header",
            "--target",
            "wasm32-wasip1",
            "--profile",
            "filter",
        ])
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("running cargo");
    assert!(status.success(), "building sdk/examples/add_header.rs for wasm32-wasip1 failed");
    target.join("wasm32-wasip1/filter/examples/add_header.wasm")
}

struct Subject {
    name: &'static str,
    harness: FilterHarness,
    samples: Vec<f64>,
    module_bytes: usize,
}

impl Subject {
    fn new(name: &'static str, module: Option<PathBuf>) -> Subject {
        let mut builder = FilterHarness::builder().log_level(tracing::Level::WARN);
        let mut module_bytes = 0;
        if let Some(path) = module {
            module_bytes = std::fs::metadata(&path).map(|m| m.len() as usize).unwrap_or(0);
            builder = builder.filter(FilterSpec::new(path).configuration(r#"{"name": "bench"}"#));
        }
        let harness = builder.build().unwrap_or_else(|e| panic!("{name}: {e}"));
        let subject = Subject { name, harness, samples: Vec::new(), module_bytes };
        let checked = subject.one();
        if module_bytes > 0 {
            assert_eq!(checked, (true, true), "{name}: both headers added");
        }
        subject
    }

    /// One request: headers up, response headers back, end of stream. Whether each header was added.
    fn one(&self) -> (bool, bool) {
        let mut stream = self.harness.request(Request::get("/bench").authority("bench.test"));
        let up = stream.upstream_request().expect("forwarded").header("x-add-header") == Some("bench");
        let down = stream.respond(Response::ok()).expect("answered").header("x-add-header-order") == Some("bench");
        stream.finish();
        (up, down)
    }

    fn round(&mut self) {
        let started = Instant::now();
        for _ in 0..PER_ROUND {
            std::hint::black_box(self.one());
        }
        self.samples.push(started.elapsed().as_nanos() as f64 / PER_ROUND as f64);
    }

    fn median(&self) -> f64 {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    }

    fn quartiles(&self) -> (f64, f64) {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        (s[s.len() / 4], s[s.len() * 3 / 4])
    }
}

fn main() {
    let only = std::env::var("WEIR_BENCH_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let mut subjects = Vec::new();
    if wanted("none") {
        subjects.push(Subject::new("none", None));
    }
    if wanted("proxy-wasm") {
        subjects.push(Subject::new("proxy-wasm", Some(weir_tests::filters::ADD_HEADER_WASM.into())));
    }
    if wanted("sdk") {
        subjects.push(Subject::new("sdk", Some(sdk_module())));
    }
    for s in &subjects {
        for _ in 0..WARMUP {
            std::hint::black_box(s.one());
        }
    }
    for round in 0..ROUNDS {
        // Interleaved, the order turned every round, so drift (frequency, caches) falls on all alike.
        let n = subjects.len();
        for i in 0..n {
            let k = if round % 2 == 0 { i } else { n - 1 - i };
            subjects[k].round();
        }
    }
    println!("{ROUNDS} rounds x {PER_ROUND} requests each (request headers + response headers + end of stream)\n");
    println!("| filter | module | ns/request, median | p25 | p75 |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for s in &subjects {
        let (p25, p75) = s.quartiles();
        let size = if s.module_bytes > 0 { format!("{} KiB", s.module_bytes / 1024) } else { "-".into() };
        println!("| {} | {size} | {:.0} | {:.0} | {:.0} |", s.name, s.median(), p25, p75);
    }
    let find = |name: &str| subjects.iter().find(|s| s.name == name).map(Subject::median);
    if let (Some(pw), Some(sdk)) = (find("proxy-wasm"), find("sdk")) {
        println!("\nsdk / proxy-wasm, whole request: {:.3}", sdk / pw);
        if let Some(none) = find("none") {
            println!(
                "filter's own cost (minus the harness with no filter, {none:.0} ns): proxy-wasm {:.0} ns, sdk {:.0} ns, ratio {:.3}",
                pw - none,
                sdk - none,
                (sdk - none) / (pw - none)
            );
        }
    }
}
