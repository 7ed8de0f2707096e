//! Cost of the example filter (docs/filters-in-other-languages.md) in each language, in Weir's wasm runtime:
//!
//! - module size (bytes of the `.wasm` each `examples/lang/<lang>/build.sh` writes);
//! - compile: wasmtime compiling the module once (Weir caches compiled code on disk, so this is paid once per
//!   module digest);
//! - VM start: instantiate + `_initialize` + `proxy_on_context_create` + `proxy_on_vm_start` +
//!   `proxy_on_configure`, from the compiled module (what a worker pays for a new VM), 200 runs;
//! - CPU per request: one request through `weir::harness` (in-process, no sockets): request headers (the filter
//!   adds a header and sends its callout), the callout's answer (it copies a header and resumes), response headers
//!   (it adds two), end of stream. Median of 41 rounds of 300 requests, after 1,000 warm-up requests, the rounds
//!   of all languages interleaved. The same with no filter is the harness's own cost, subtracted in a column.
//!
//! Times are the thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`; the harness and the VMs run on the calling
//! thread), so other load on the machine does not count; wall-clock medians are printed too.
//!
//! Run: `cargo run --release --manifest-path examples/lang/bench/Cargo.toml --target-dir /tmp/target-rel`
//! (`-- DIR` takes the modules from DIR/<lang>.wasm instead of building them into target/lang-examples/bench).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::abi::HostShared;
use weir::harness::{FilterHarness, FilterSpec, Request, Response};
use weir::telemetry::metrics::Metrics;
use weir::wasm::{Limits, Vm, WasmRuntime};

const LANGUAGES: &[&str] = &["rust-proxy-wasm", "rust-sdk", "go", "c", "assemblyscript"];
const CONFIG: &str = r#"{"tag": "bench", "deny_path": "/admin", "callout_cluster": "auth", "callout_path": "/verdict", "callout_header": "x-upstream"}"#;
const VM_STARTS: usize = 200;
const ROUNDS: usize = 41;
const PER_ROUND: usize = 300;
const WARMUP: usize = 1_000;

fn module(lang: &str, from: Option<&Path>) -> PathBuf {
    let lang_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(lang);
    if let Some(dir) = from {
        return dir.join(format!("{lang}.wasm"));
    }
    let out =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../target/lang-examples/bench").join(format!("{lang}.wasm"));
    let status = Command::new("bash").arg(lang_dir.join("build.sh")).arg(&out).status().expect("running bash");
    assert!(status.success(), "examples/lang/{lang}/build.sh failed");
    out
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
}

/// This thread's CPU time so far, in ns (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, Linux x86_64).
fn cpu_ns() -> u64 {
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut time = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `time` is a valid, writable timespec (two i64 on x86_64 Linux) for the duration of the call.
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    time.sec as u64 * 1_000_000_000 + time.nsec as u64
}

fn percentile(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() - 1) as f64 * q) as usize]
}

/// VM start in ms: CPU median, CPU p90, wall median; and the compile time in ms (wall).
fn vm_start(lang: &str, bytes: &[u8]) -> (f64, f64, f64, f64) {
    let runtime = WasmRuntime::new(Limits::default(), HostShared::new(Arc::new(Metrics::new()))).expect("runtime");
    let compile = Instant::now();
    let module = runtime.load(lang, bytes).expect("loads");
    let compile = compile.elapsed().as_secs_f64() * 1e3;
    let config: Arc<[u8]> = Arc::from(CONFIG.as_bytes());
    let (mut cpu, mut wall): (Vec<f64>, Vec<f64>) = (0..VM_STARTS)
        .map(|_| {
            let (started, cpu) = (Instant::now(), cpu_ns());
            let mut vm = Vm::start(&runtime, module.clone(), 0, Arc::from(""), Arc::from(&b""[..])).expect("starts");
            vm.create_root(Arc::from("example"), Default::default(), config.clone()).expect("configures");
            let took = ((cpu_ns() - cpu) as f64 / 1e6, started.elapsed().as_secs_f64() * 1e3);
            drop(vm);
            took
        })
        .unzip();
    (percentile(&mut cpu, 0.5), percentile(&mut cpu, 0.9), percentile(&mut wall, 0.5), compile)
}

fn harness(module: Option<&Path>) -> FilterHarness {
    let mut builder = FilterHarness::builder().log_level(tracing::Level::WARN).cluster("auth");
    if let Some(path) = module {
        builder = builder.filter(FilterSpec::new(path.to_path_buf()).name("example").configuration(CONFIG));
    }
    builder.build().expect("the harness starts")
}

/// One request through the filter (or none); checks what the filter did.
fn one(harness: &FilterHarness, with_filter: bool) {
    let mut stream = harness.request(Request::get("/hello").authority("bench.test"));
    if with_filter {
        let callout = harness.callouts().pop().expect("the filter called out");
        harness.answer_callout(callout.token, Response::ok().header("x-upstream", "auth"));
    }
    let up = stream.upstream_request().expect("forwarded").header("x-example-request").map(str::to_owned);
    let down = stream.respond(Response::ok()).expect("answered").header("x-example-callout").map(str::to_owned);
    if with_filter {
        assert_eq!((up.as_deref(), down.as_deref()), (Some("bench"), Some("auth")));
    }
    stream.finish();
}

/// One round: `PER_ROUND` requests; (CPU ns, wall ns) per request.
fn round(harness: &FilterHarness, with_filter: bool) -> (f64, f64) {
    let (started, cpu) = (Instant::now(), cpu_ns());
    for _ in 0..PER_ROUND {
        one(harness, with_filter);
    }
    ((cpu_ns() - cpu) as f64 / PER_ROUND as f64, started.elapsed().as_nanos() as f64 / PER_ROUND as f64)
}

fn main() {
    let from = std::env::args().nth(1).map(PathBuf::from);
    // Subject 0 is the harness with no filter; then one per language.
    let mut subjects: Vec<(&str, Option<PathBuf>)> = vec![("(no filter)", None)];
    subjects.extend(LANGUAGES.iter().map(|lang| (*lang, Some(module(lang, from.as_deref())))));
    let harnesses: Vec<FilterHarness> = subjects.iter().map(|(_, path)| harness(path.as_deref())).collect();
    for (h, (_, path)) in harnesses.iter().zip(&subjects) {
        for _ in 0..WARMUP {
            one(h, path.is_some());
        }
    }
    // Rounds interleave the subjects, in turned order every other round, so drift in the machine's load falls on
    // all alike.
    let n = subjects.len();
    let mut cpu = vec![Vec::new(); n];
    let mut wall = vec![Vec::new(); n];
    for r in 0..ROUNDS {
        for i in 0..n {
            let k = if r % 2 == 0 { i } else { n - 1 - i };
            let (c, w) = round(&harnesses[k], subjects[k].1.is_some());
            cpu[k].push(c);
            wall[k].push(w);
        }
    }
    let baseline = percentile(&mut cpu[0], 0.5);
    println!("harness alone: {baseline:.0} ns/request CPU ({:.0} wall)\n", percentile(&mut wall[0], 0.5));
    println!(
        "| language | module size | compile (once, wall) | VM start, CPU median | p90 | wall median | CPU/request, median | minus the harness | wall/request |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for k in 1..n {
        let (lang, path) = (subjects[k].0, subjects[k].1.as_ref().expect("a module"));
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (median, p90, vm_wall, compile) = vm_start(lang, &bytes);
        let ns = percentile(&mut cpu[k], 0.5);
        println!(
            "| {lang} | {} B | {compile:.0} ms | {median:.3} ms | {p90:.3} ms | {vm_wall:.3} ms | {ns:.0} ns | {:.0} ns | {:.0} ns |",
            bytes.len(),
            ns - baseline,
            percentile(&mut wall[k], 0.5)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
