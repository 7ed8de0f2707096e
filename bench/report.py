#!/usr/bin/env python3
"""Turn the raw wrk outputs of one bench/run into a markdown section (standard library only).

usage: report.py META.tsv RUNS.tsv > report.md
       report.py --self-test

META.tsv: "key<TAB>value" lines written by bench/run (date, machine, versions, settings).
RUNS.tsv: "label<TAB>name<TAB>variant<TAB>workers<TAB>connections<TAB>status<TAB>wrk-output-file
<TAB>cpu-ticks<TAB>metrics" (cpu-ticks: the server's utime+stime over the measured run, in 1/clk_tck s;
may be empty; metrics: for Weir runs, the prefix of two /metrics snapshots, METRICS.0 before the
measured run and METRICS.1 after it, else empty). A label is "name" or "name:variant"; Weir is
compared with Envoy and nginx of the same variant (nginx has no filter variants: "wasmN" runs N `headers` test filters, "minN" N minimal
`add_header` ones). CPU per request is reported at 1 worker, 32 connections.
"""

import re
import sys

CPU_WORKERS, CPU_CONNS = 1, 32  # the (workers, connections) of the CPU-per-request table

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
DURATION_RE = re.compile(r"^([0-9.]+)(us|ms|s|m|h)$")

# Filter variants "<kind>N": kind -> the test filter it runs (tests/filters/<crate>), in report order.
FILTER_KINDS = {"wasm": "headers", "min": "add_header"}
FILTER_VARIANT_RE = re.compile(r"^(" + "|".join(FILTER_KINDS) + r")(\d+)$")


def to_ms(text):
    """'272.00us' / '1.02ms' / '2.00s' / '1.00m' -> milliseconds (float)."""
    m = DURATION_RE.match(text.strip())
    if not m:
        raise ValueError(f"unknown wrk duration {text!r}")
    return float(m.group(1)) * UNIT_MS[m.group(2)]


def parse_wrk(text):
    """Requests/s, p50/p99 in ms and error counts from `wrk --latency` output; None if absent."""
    out = {"rps": None, "p50": None, "p99": None, "requests": None, "errors": {}}
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    if m:
        out["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        if m:
            out[key] = to_ms(m.group(1))
    m = re.search(r"^\s+(\d+) requests in", text, re.M)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        for kind, n in zip(("connect", "read", "write", "timeout"), m.groups()):
            if int(n):
                out["errors"][kind] = int(n)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m and int(m.group(1)):
        out["errors"]["non-2xx"] = int(m.group(1))
    return out


def read_meta(path):
    meta = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            meta[key] = value
    return meta


def read_runs(path):
    runs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            label, name, variant, workers, conns, status, out = fields[:7]
            ticks = fields[7] if len(fields) > 7 else ""
            metrics = fields[8] if len(fields) > 8 else ""
            run = {"label": label, "name": name, "variant": variant,
                   "workers": int(workers), "conns": int(conns), "status": status,
                   "cpu_ticks": int(ticks) if ticks.strip() else None,
                   "own": own_durations(metrics) if metrics.strip() else None}
            try:
                with open(out, encoding="utf-8", errors="replace") as g:
                    run.update(parse_wrk(g.read()))
            except OSError:
                run.update(parse_wrk(""))
            if run["rps"] is None or run["p99"] is None:
                run["status"] = "failed"
            runs.append(run)
    return runs


BUCKET_RE = re.compile(r'^weir_request_duration_seconds_bucket\{(?:[^}]*,)?le="([^"]+)"[^}]*\} ([0-9.e+]+)$')


def duration_buckets(path):
    """{upper bound in seconds: requests at or under it}, summed over routes and workers; None
    when the file cannot be read or holds no histogram."""
    buckets = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = BUCKET_RE.match(line.strip())
                if m:
                    le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
                    buckets[le] = buckets.get(le, 0) + float(m.group(2))
    except OSError:
        return None
    return buckets or None


def own_durations(prefix):
    """Weir's request-duration histogram over the measured run (the second snapshot less the
    first): {bound: requests at or under it}, or None."""
    before, after = duration_buckets(prefix + ".0"), duration_buckets(prefix + ".1")
    if before is None or after is None:
        return None
    own = {le: after[le] - before.get(le, 0) for le in after}
    return own if own.get(float("inf"), 0) > 0 else None


def within(own, seconds):
    """Share of the requests that took at most `seconds` (a bucket bound), as a percentage."""
    return 100.0 * own.get(seconds, 0) / own[float("inf")]


def p99_bound(own):
    """The smallest bucket bound that 99% of the requests stayed within, in ms (inf: none did)."""
    total = own[float("inf")]
    return next(le * 1000 for le in sorted(own) if own[le] >= 0.99 * total)


def fmt_bound(own):
    """p99_bound as the report writes it: past the largest finite bound, "> that bound"."""
    bound = p99_bound(own)
    if bound == float("inf"):
        return f"> {max(le for le in own if le != float('inf')) * 1000:g}"
    return f"{bound:g}"


def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}"


def fmt_rps(v):
    return "-" if v is None else f"{v:,.0f}"


def fmt_errors(run):
    if run["status"] != "ok":
        return "**run failed**"
    if not run["errors"]:
        return "0"
    return ", ".join(f"{k} {v}" for k, v in run["errors"].items())


def pretty(label):
    names = {"backend": "backend (direct)", "nginx": "nginx", "envoy": "Envoy", "weir": "Weir"}
    name, _, variant = label.partition(":")
    return names.get(name, name) + (f" + {variant}" if variant else "")


def mib(kb):
    return f"{int(kb) / 1024:.1f} MiB" if kb else None


def filter_variant(variant):
    """(kind, N) for a filter variant "wasmN" / "minN", None otherwise."""
    m = FILTER_VARIANT_RE.match(variant or "")
    return (m.group(1), int(m.group(2))) if m else None


def variant_key(variant):
    """Sort order: plain first, then wasm1, wasm5, ..., then min1, min5, ... by filter count, then
    anything else."""
    if not variant:
        return (0, 0, 0, "")
    fv = filter_variant(variant)
    if fv:
        return (1, list(FILTER_KINDS).index(fv[0]), fv[1], variant)
    return (2, 0, 0, variant)


def cpu_us_per_request(run, clk_tck):
    """The server's CPU time over the measured run divided by the requests wrk completed, in us."""
    if (run is None or run["status"] != "ok" or run["errors"] or run["cpu_ticks"] is None
            or not run["requests"]):
        return None
    return run["cpu_ticks"] / clk_tck * 1e6 / run["requests"]


def fmt_us(v, signed=False):
    if v is None:
        return "-"
    return f"{v:+.1f}" if signed else f"{v:.1f}"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    meta = read_meta(sys.argv[1])
    runs = read_runs(sys.argv[2])
    lines = []
    add = lines.append

    add(f"## Run of {meta.get('date', '?')}")
    add("")
    add(f"- Machine: {meta.get('nproc', '?')} cores, {meta.get('cpu', '?')}, "
        f"{meta.get('memory', '?')} RAM, {meta.get('kernel', '?')}")
    add(f"- Command: `{meta.get('command', 'bench/run')}`")
    envoy = meta.get("envoy", "?")
    parts = envoy.split("/")  # "<sha>/1.40.0/Clean/RELEASE/BoringSSL"
    if len(parts) >= 2 and re.match(r"^[0-9a-f]{40}$", parts[0]):
        envoy = f"{parts[1]} ({parts[0][:12]}, {'/'.join(parts[2:])})"
    warmup = meta.get("warmup", "0")
    warm = f"after a {warmup} s warm-up run that is discarded" if warmup not in ("", "0") else "no warm-up"
    add(f"- Versions: Weir {meta.get('weir', '?')}; Envoy {envoy}; "
        f"nginx {meta.get('nginx', '?')}; {meta.get('wrk', 'wrk')}")
    add(f"- Load: `wrk -t{meta.get('threads', '2')} -c<connections> -d{meta.get('duration', '?')}s "
        f"--latency`, {warm}; "
        "HTTP/1.1 keep-alive `GET /` through each proxy to one nginx backend (1 worker, "
        "23-byte body), everything on this machine over loopback. \"workers\" is the proxy's "
        "worker count (nginx `worker_processes`, Envoy `--concurrency`, Weir `--workers`).")
    setup = ("on the route, configurations `{\"name\":\"f1\"}` .. `{\"name\":\"fN\"}`, the same "
             "`.wasm` in both proxies, one VM per worker shared by the N instances (Envoy: "
             "`envoy.filters.http.wasm` before the router, runtime V8; Weir: the route's `filters`, "
             "Wasmtime)")
    logs = ("Filter logs are off in both (Envoy `--log-level warn`; Weir "
            f"`RUST_LOG={meta.get('weir_rust_log', '?')}`).")
    if meta.get("wasm_module"):
        add("- Filters: variant `wasmN` runs N instances of the proxy-wasm test filter "
            f"{meta['wasm_module']} {setup}. Per request each instance adds and sets "
            f"request headers and adds/sets two response headers. {logs}")
    if meta.get("min_module"):
        add("- Minimal filter: variant `minN` runs N instances of the header-only proxy-wasm test "
            f"filter {meta['min_module']} "
            + ("the same way" if meta.get("wasm_module") else setup)
            + ". Per request each instance makes one hostcall per header phase: it adds one "
            "request header and one response header, and logs nothing."
            + ("" if meta.get("wasm_module") else f" {logs}"))
    add("")
    add("| target | workers | connections | requests/s | p50 (ms) | p99 (ms) | errors |")
    add("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in runs:
        workers = "1 (backend)" if r["name"] == "backend" else str(r["workers"])
        add(f"| {pretty(r['label'])} | {workers} | {r['conns']} | {fmt_rps(r['rps'])} | "
            f"{fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | {fmt_errors(r)} |")

    by_key = {(r["name"], r["variant"], r["workers"], r["conns"]): r
              for r in runs if r["status"] == "ok"}
    weir_runs = [r for r in runs if r["name"] == "weir"]
    if weir_runs:
        add("")
        add("Weir relative to the references (same workers and connections; ratio > 1 means "
            "Weir served more requests/s):")
        add("")
        add("The p99 check compares Weir's p99 with every reference run of that variant: Envoy and "
            "nginx for plain, Envoy alone for the `wasmN` and `minN` variants (nginx runs no "
            "proxy-wasm filters).")
        add("")
        add("| variant | workers | connections | Weir/Envoy req/s | Weir/nginx req/s "
            "| Weir p99 <= references |")
        add("| --- | ---: | ---: | ---: | ---: | --- |")
        weir_runs.sort(key=lambda r: (variant_key(r["variant"]), r["workers"], r["conns"]))
        for r in weir_runs:
            key = (r["variant"], r["workers"], r["conns"])
            envoy = by_key.get(("envoy",) + key)
            nginx = by_key.get(("nginx",) + key)
            filtered = filter_variant(r["variant"]) is not None
            ok = r["status"] == "ok"

            def ratio(ref, absent="n/a"):
                if ref is None and absent != "n/a":
                    return absent
                if not ok or ref is None or not ref["rps"]:
                    return "n/a"
                return f"{r['rps'] / ref['rps']:.2f}"

            refs = [("Envoy", envoy)] if filtered else [("Envoy", envoy), ("nginx", nginx)]
            if ok and all(ref for _, ref in refs):
                good = all(r["p99"] <= ref["p99"] for _, ref in refs)
                verdict = (f"{'yes' if good else 'no'} ({fmt_ms(r['p99'])} vs "
                           + " / ".join(f"{n} {fmt_ms(ref['p99'])}" for n, ref in refs) + " ms)")
            else:
                verdict = "n/a"
            add(f"| {r['variant'] or 'plain'} | {r['workers']} | {r['conns']} | {ratio(envoy)} | "
                f"{ratio(nginx, '-' if filtered else 'n/a')} | {verdict} |")

    clk_tck = int(meta.get("clk_tck") or 100)
    cpu_rows = []
    for name in ("envoy", "weir", "nginx"):
        variants = sorted({r["variant"] for r in runs if r["name"] == name}, key=variant_key)
        if not variants:
            continue
        at = {v: next((r for r in runs if r["name"] == name and r["variant"] == v
                       and r["workers"] == CPU_WORKERS and r["conns"] == CPU_CONNS), None)
              for v in variants}
        cpu_rows.append((name, {v: cpu_us_per_request(at[v], clk_tck) for v in variants}))
    filter_variants = sorted({r["variant"] for r in runs if filter_variant(r["variant"])},
                             key=variant_key)
    if cpu_rows:
        # Derived columns, per filter kind present: "one <filter> filter" = kind1 - plain, "per
        # <filter> filter in a chain of N" = (kindN - plain) / N.
        derived, formulas = [], []
        for kind, crate in FILTER_KINDS.items():
            kind_formulas = []
            for v in filter_variants:
                k, n = filter_variant(v)
                if k != kind:
                    continue
                if n == 1:
                    title, formula = f"one `{crate}` filter (us)", f"one filter = {v} - plain"
                else:
                    title = f"per `{crate}` filter in a chain of {n} (us)"
                    formula = f"per filter in a chain of {n} = ({v} - plain) / {n}"
                derived.append((title, lambda c, v=v, n=n: (c.get(v), c.get(""), n)))
                kind_formulas.append(formula)
            if kind_formulas:
                what = "busy" if kind == "wasm" else "minimal header-only"
                formulas.append(f"for the {what} `{crate}` filter (`{kind}N`), "
                                + ", ".join(kind_formulas))
        add("")
        add(f"CPU per request at {CPU_WORKERS} worker and {CPU_CONNS} connections: the proxy "
            "process's CPU time (utime + stime from `/proc/<pid>/stat`, all threads; nginx: its "
            "process group, master and workers) over the measured wrk run, divided by the "
            "requests wrk completed, in microseconds."
            + (" The filter columns are differences of those figures, each named after the test "
               f"filter it uses: {'; '.join(formulas)}." if formulas else "")
            + f" Clock-tick resolution is {1000 // clk_tck} ms of CPU per run.")
        add("")
        head = ["proxy", "plain (us/req)"] + [f"{v} (us/req)" for v in filter_variants]
        head += [d[0] for d in derived]
        add("| " + " | ".join(head) + " |")
        add("| --- |" + " ---: |" * (len(head) - 1))
        for name, cpu in cpu_rows:
            cells = [pretty(name), fmt_us(cpu.get(""))]
            cells += [fmt_us(cpu.get(v)) for v in filter_variants]
            for _, get in derived:
                with_f, plain, n = get(cpu)
                cells.append("-" if with_f is None or plain is None
                             else fmt_us((with_f - plain) / n, signed=True))
            add("| " + " | ".join(cells) + " |")

    own_runs = [r for r in runs if r["name"] == "weir" and r.get("own")]
    if own_runs:
        add("")
        add("Weir's own time per request over the same measured runs, from its "
            "`weir_request_duration_seconds` histogram (request head read to the end of the answer's "
            "body; /metrics read before and after each wrk run), beside what wrk measured (wrk "
            "adds the time a request waits to be read and the time its answer waits for wrk to run):")
        add("")
        add("| variant | workers | connections | wrk p99 (ms) | Weir's own p99 within (ms) "
            "| within 0.5 ms | within 1 ms | within 2.5 ms |")
        add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in sorted(own_runs, key=lambda r: (variant_key(r["variant"]), r["workers"], r["conns"])):
            own = r["own"]
            add(f"| {r['variant'] or 'plain'} | {r['workers']} | {r['conns']} | {fmt_ms(r['p99'])} | "
                f"{fmt_bound(own)} | {within(own, 0.0005):.1f}% | {within(own, 0.001):.1f}% | "
                f"{within(own, 0.0025):.1f}% |")

    mem = []
    if mib(meta.get("weir_idle_rss_kb")):
        fresh = mib(meta.get("weir_idle_rss_fresh_kb"))
        first = f"; {fresh} at the first start on a fresh data dir" if fresh else ""
        mem.append(f"Weir {mib(meta['weir_idle_rss_kb'])} (`--workers 2`{first})")
    if mib(meta.get("envoy_idle_rss_kb")):
        mem.append(f"Envoy {mib(meta['envoy_idle_rss_kb'])} (`--concurrency 2`)")
    if mem:
        add("")
        add("Idle memory (VmRSS 1 s after start-up, no traffic yet): " + "; ".join(mem) + ".")
    failed = [r for r in runs if r["status"] != "ok" or r["errors"]]
    if failed:
        add("")
        add("Note: runs with errors or failures are marked in the errors column; their numbers "
            "are not comparable.")
    if meta.get("elapsed_s"):
        add("")
        measuring = (f" ({meta['measure_s']} s of it measuring: {len(runs)} wrk runs, start-ups, "
                     "filter checks and the memory check)") if meta.get("measure_s") else ""
        add(f"The run took {meta['elapsed_s']} s{measuring}.")
    print("\n".join(lines))


def self_test():
    """Checks the /metrics arithmetic on written snapshots (run by .ci/run)."""
    import os
    import tempfile

    def snapshot(path, counts):
        # Two workers' series, as Weir writes them; counts are cumulative per bound.
        bounds = ["0.0005", "0.001", "0.0025", "+Inf"]
        with open(path, "w", encoding="utf-8") as f:
            f.write("# TYPE weir_request_duration_seconds histogram\n")
            for worker, share in (("0", 0.5), ("1", 0.5)):
                f.write(f'weir_request_duration_seconds_count{{route="all",worker="{worker}"}} 1\n')
                for le, n in zip(bounds, counts):
                    f.write(f'weir_request_duration_seconds_bucket{{le="{le}",route="all",worker="{worker}"}} '
                            f"{n * share}\n")
            f.write('weir_requests_total{route="all",status="2xx",worker="0"} 5\n')

    cases = [
        # (before, after, p99 bound in ms, share within 0.5 ms, within 1 ms)
        ([0, 0, 0, 0], [990, 1000, 1000, 1000], 0.5, 99.0, 100.0),
        ([100, 100, 100, 100], [1080, 1095, 1100, 1100], 1.0, 98.0, 99.5),
        ([0, 0, 0, 0], [0, 10, 980, 1000], float("inf"), 0.0, 1.0),
    ]
    with tempfile.TemporaryDirectory() as d:
        prefix = os.path.join(d, "run.metrics")
        for before, after, bound, half, one in cases:
            snapshot(prefix + ".0", before)
            snapshot(prefix + ".1", after)
            own = own_durations(prefix)
            assert own is not None, (before, after)
            assert p99_bound(own) == bound, (p99_bound(own), bound)
            assert abs(within(own, 0.0005) - half) < 1e-9, (within(own, 0.0005), half)
            assert abs(within(own, 0.001) - one) < 1e-9, (within(own, 0.001), one)
            assert fmt_bound(own) == ("> 2.5" if bound == float("inf") else f"{bound:g}"), fmt_bound(own)
        # No requests in the run, or a snapshot missing: no figures.
        snapshot(prefix + ".0", [5, 5, 5, 5])
        snapshot(prefix + ".1", [5, 5, 5, 5])
        assert own_durations(prefix) is None
        os.remove(prefix + ".1")
        assert own_durations(prefix) is None
    print("report.py self-test: ok")


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
    else:
        main()
