//! How long a VM takes to start from cached compiled code: instantiate, `_initialize`, `proxy_on_vm_start`
//! and `proxy_on_configure` of one root context. Run: `cargo bench -p weir --bench vm_start`
//! (builds the test filters first if needed: `cargo build -p weir-tests`).

use std::sync::Arc;
use std::time::{Duration, Instant};
use weir::abi::HostShared;
use weir::telemetry::metrics::Metrics;
use weir::wasm::{Limits, Vm, WasmRuntime};

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let filters = root.join("target/wasm-filters/wasm32-wasip1/release");
    let runtime = WasmRuntime::new(Limits::default(), HostShared::new(Arc::new(Metrics::new()))).expect("runtime");
    println!("| filter | module size | compile (once) | VM start, median | p90 | max | runs |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, config) in [("headers", &br#"{"name":"bench"}"#[..]), ("state", &b""[..]), ("body", &b""[..])] {
        let path = filters.join(format!("{name}.wasm"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e}; build the test filters first: cargo build -p weir-tests", path.display())
        });
        let compile = Instant::now();
        let module = runtime.load(name, &bytes).expect("loads");
        let compile = compile.elapsed();
        let config: Arc<[u8]> = Arc::from(config);
        let mut samples: Vec<Duration> = (0..200)
            .map(|_| {
                let started = Instant::now();
                let mut vm =
                    Vm::start(&runtime, module.clone(), 0, Arc::from(""), Arc::from(&b""[..])).expect("starts");
                vm.create_root(Arc::from(name), Default::default(), config.clone()).expect("configures");
                let took = started.elapsed();
                drop(vm);
                took
            })
            .collect();
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        println!(
            "| {name} | {} KiB | {:.1} ms | {:.3} ms | {:.3} ms | {:.3} ms | {} |",
            bytes.len() / 1024,
            compile.as_secs_f64() * 1e3,
            at(0.5).as_secs_f64() * 1e3,
            at(0.9).as_secs_f64() * 1e3,
            samples[samples.len() - 1].as_secs_f64() * 1e3,
            samples.len()
        );
    }
}
