#!/usr/bin/env python3
"""Differential test: the same proxy-wasm filters and requests through Envoy and through Weir.

Started by tests/differential/run (which installs Envoy and builds Weir and the test filters); see
tests/differential/README.md. Standard library only.

For each scenario (one filter chain + a list of requests) it starts Envoy and Weir on 127.0.0.1 with
the same chain and configuration, both in front of one Python echo upstream, sends every request to
both with http.client, and compares status, normalized response headers and the body. It prints a
table (scenario, request, field, Envoy value, Weir value, same/DIFF) and a summary.

Exit status: 0 when the comparison ran (differences are information), 1 with --strict and at least
one difference, 2 when the harness itself failed (Envoy would not start, a bad argument, ...).
"""

import argparse
import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
# Every request carries this Host, so :authority (and the filters' x-wasm-authority) is the same on
# both proxies although they listen on different ports.
AUTHORITY = "diff.test"
READY_TIMEOUT = 30.0   # seconds for a proxy to become ready
REQUEST_TIMEOUT = 15.0  # seconds per request (the callout filter's own timeout is 5 s)
STOP_TIMEOUT = 10.0    # seconds between SIGTERM and SIGKILL


class HarnessError(Exception):
    """The harness could not do its job (as opposed to a difference between the proxies)."""


# ----------------------------------------------------------------------------------- scenarios
def req(label, method, path, headers=None, body=None, compare="full", delay=0.0):
    """One request. compare: "full" (status, headers, body), "status" (status only), or "state"
    (status, headers, and the state filter's JSON by STATE_FIELDS). delay: seconds to wait first."""
    return {"label": label, "method": method, "path": path, "headers": headers or [],
            "body": body, "compare": compare, "delay": delay}


def flt(name, module, configuration):
    """One filter of a chain: plugin name, module stem (tests/filters), configuration text."""
    return {"name": name, "module": module, "configuration": configuration}


HEADER_REQUESTS = [
    req("GET /plain", "GET", "/plain"),
    req("GET /echo/replace +x-replace +x-remove", "GET", "/echo/replace",
        [("x-replace", "original"), ("x-remove", "must-go"), ("x-keep", "kept")]),
    req("GET /local/x", "GET", "/local/x"),
    req("GET /rewrite/me", "GET", "/rewrite/me"),
    req("GET /status/404 (upstream error)", "GET", "/status/404"),
]

SCENARIOS = [
    {"name": "headers",
     "filters": [flt("alpha", "headers", '{"name":"alpha"}')],
     "requests": HEADER_REQUESTS},
    {"name": "headers-chain",
     "filters": [flt("alpha", "headers", '{"name":"alpha"}'), flt("beta", "headers", '{"name":"beta"}')],
     "requests": HEADER_REQUESTS},
    {"name": "body",
     "filters": [flt("body", "body", "")],
     "requests": [req("POST /echo \"hello\"", "POST", "/echo", [("content-type", "text/plain")], b"hello")]},
    {"name": "callout-allow",
     "filters": [flt("callout", "callout", '{"cluster":"auth_cluster","path":"/auth"}')],
     "requests": [req("GET /echo/callout", "GET", "/echo/callout")]},
    {"name": "callout-deny",
     "filters": [flt("callout", "callout", '{"cluster":"auth_cluster","path":"/deny"}')],
     "requests": [req("GET /echo/callout", "GET", "/echo/callout")]},
    {"name": "panic",
     "filters": [flt("panic", "panic", "")],
     "requests": [
         req("GET /echo/calm", "GET", "/echo/calm"),
         req("GET /echo/boom +x-panic", "GET", "/echo/boom", [("x-panic", "1")], compare="status"),
         req("GET /echo/after (right after the trap)", "GET", "/echo/after"),
         req("GET /echo/later (1.5 s after the trap)", "GET", "/echo/later", delay=1.5),
     ]},
    # The same requests with Envoy's FAIL_RELOAD policy (a fresh VM for new streams after a trap,
    # paced by a 1 s backoff): what Weir's fail_closed does, per docs/filters.md.
    {"name": "panic-reload",
     "filters": [flt("panic", "panic", "")],
     "envoy_plugin": {"failure_policy": "FAIL_RELOAD"},
     "requests": [
         req("GET /echo/calm", "GET", "/echo/calm"),
         req("GET /echo/boom +x-panic", "GET", "/echo/boom", [("x-panic", "1")], compare="status"),
         req("GET /echo/after (right after the trap)", "GET", "/echo/after"),
         req("GET /echo/later (1.5 s after the trap)", "GET", "/echo/later", delay=1.5),
     ]},
    # A filter pausing in its last body callback holds the whole body until its root context's tick resumes the
    # stream (and appends to the held body from the tick): request and response.
    {"name": "pause-resume",
     "filters": [flt("hold", "pause_resume", "")],
     "requests": [
         req("POST /echo/held-body +x-hold-body-ms", "POST", "/echo/held-body",
             [("x-hold-body-ms", "100"), ("content-type", "text/plain")], b"payload"),
         req("POST /echo/held-response +x-hold-response-body-ms", "POST", "/echo/held-response",
             [("x-hold-response-body-ms", "100"), ("content-type", "text/plain")], b"x"),
     ]},
    {"name": "state",
     "filters": [flt("state", "state", "")],
     "requests": [req(f"GET /state/{i}", "GET", f"/state/{i}", compare="state") for i in (1, 2, 3)]},
]


# ------------------------------------------------------------------------------ echo upstream
class EchoHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 upstream shared by both proxies (keep-alive, Content-Length or chunked bodies).

    /status/<code>  that status, body "status <code>\\n" (none for 1xx/204/304)
    /auth           200, body "auth ok host=<host> original=<x-original-path>\\n" (the callout target)
    /deny           403, body "denied by upstream\\n"
    anything else   200 JSON {"method", "path", "headers": [[name, value], ...], "body"}, header
                    names lower-cased and sorted by name (duplicates keep their order)
    """

    protocol_version = "HTTP/1.1"
    server_version = "diff-echo"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet; the proxies' logs say enough
        pass

    def _read_body(self):
        te = (self.headers.get("transfer-encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("eof inside a chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)  # CRLF after the chunk
            return b"".join(chunks)
        length = self.headers.get("content-length")
        if length is not None:
            return self.rfile.read(int(length))
        return b""  # HTTP/1.1: a request without either has no body

    def _send(self, status, body, content_type="text/plain"):
        self.send_response(status)
        if status >= 200 and status not in (204, 304):
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status >= 200 and status not in (204, 304):
            self.wfile.write(body)

    def _handle(self):
        body = self._read_body()
        path = self.path
        bare = path.split("?", 1)[0]
        if bare.startswith("/status/"):
            try:
                code = int(bare[len("/status/"):])
            except ValueError:
                code = 400
            self._send(code, f"status {code}\n".encode())
        elif bare == "/auth":
            text = "auth ok host=%s original=%s\n" % (self.headers.get("host", "-"),
                                                      self.headers.get("x-original-path", "-"))
            self._send(200, text.encode())
        elif bare == "/deny":
            self._send(403, b"denied by upstream\n")
        else:
            headers = sorted(([k.lower(), v] for k, v in self.headers.items()), key=lambda kv: kv[0])
            doc = {"method": self.command, "path": path, "headers": headers,
                   "body": body.decode("utf-8", "replace")}
            self._send(200, json.dumps(doc, sort_keys=True).encode(), "application/json")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


class EchoServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# ------------------------------------------------------------------------------ processes
def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Processes:
    """Servers this run started, each in its own session; their pids are also written to a file
    that the bash wrapper's EXIT trap reads, so nothing survives an interrupted run."""

    def __init__(self, pidfile):
        self.pidfile = pidfile
        self.procs = []
        open(pidfile, "w").close()

    def _write(self):
        with open(self.pidfile, "w") as f:
            f.writelines(f"{p.pid}\n" for p in self.procs)

    def spawn(self, argv, logpath):
        log = open(logpath, "wb")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        finally:
            log.close()
        self.procs.append(p)
        self._write()
        return p

    def stop(self, p):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)  # anything left in its group
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if p in self.procs:
            self.procs.remove(p)
            self._write()

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p)


def http_status(url, timeout=1.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, http.client.HTTPException):
        return None


def tcp_open(port, timeout=1.0):
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path, n=15):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError:
        return "(no log)"


def wait_ready(proc, ready_url, port, deadline):
    """Until ready_url answers 200 and the data port accepts a TCP connection (no HTTP request on the
    data port: it would go through the filters and, e.g., count as a `hits` of the state filter).
    Returns None when ready, else the reason."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode} during start-up"
        if http_status(ready_url) == 200 and tcp_open(port):
            return None
        time.sleep(0.1)
    return f"not ready within {READY_TIMEOUT:.0f} s"


# ------------------------------------------------------------------------------ configs
def envoy_config(sc, port, admin_port, echo_port, filters_dir):
    http_filters = []
    for f in sc["filters"]:
        http_filters.append({
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": f["name"],
                    "root_id": "",
                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                      "value": f["configuration"]},
                    "vm_config": {
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": os.path.join(filters_dir, f["module"] + ".wasm")}},
                    },
                    # fail_open false (FAIL_CLOSED) unless the scenario sets another policy
                    **(sc.get("envoy_plugin") or {"fail_open": False}),
                },
            },
        })
    http_filters.append({"name": "envoy.filters.http.router",
                         "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})

    def cluster(name):
        return {"name": name, "type": "STATIC", "connect_timeout": "1s", "lb_policy": "ROUND_ROBIN",
                "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": HOST, "port_value": echo_port}}}}]}]}}

    return {
        "admin": {"address": {"socket_address": {"address": HOST, "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "diff",
                "address": {"socket_address": {"address": HOST, "port_value": port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "diff",
                        "codec_type": "AUTO",
                        "route_config": {"name": "local", "virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "echo"}}]}]},
                        "http_filters": http_filters,
                    }}]}],
            }],
            "clusters": [cluster("echo"), cluster("auth_cluster")],
        },
    }


def weir_config(sc, port, admin_port, echo_port, filters_dir, data_dir):
    filters = [{"name": f["name"],
                "module": os.path.join(filters_dir, f["module"] + ".wasm"),
                # a JSON string is passed as its bytes: exactly Envoy's StringValue
                "configuration": f["configuration"],
                "failure_policy": "fail_closed"} for f in sc["filters"]]
    echo = f"{HOST}:{echo_port}"
    return {
        "data_dir": data_dir,
        "listeners": [{"name": "diff", "address": f"{HOST}:{port}"}],
        "admin": {"address": f"{HOST}:{admin_port}"},
        "routes": [{"name": "all", "match": {"path": {"prefix": "/"}}, "cluster": "echo", "filters": filters}],
        "clusters": [{"name": "echo", "endpoints": [echo]}, {"name": "auth_cluster", "endpoints": [echo]}],
        "shutdown": {"drain_timeout_ms": 1000},
        "logging": {"access_log": True},
    }


# ------------------------------------------------------------------------------ requests
def send(port, r):
    """One request on a fresh connection. Returns {"status", "headers": [(name, value)], "body"} or
    {"error": text}."""
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    try:
        conn.putrequest(r["method"], r["path"], skip_host=True, skip_accept_encoding=True)
        conn.putheader("host", AUTHORITY)
        for k, v in r["headers"]:
            conn.putheader(k, v)
        body = r["body"]
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return {"status": resp.status, "headers": resp.getheaders(), "body": data}
    except (OSError, http.client.HTTPException) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        conn.close()


# ------------------------------------------------------------------------------ normalization
# The state filter's reply: which JSON fields are compared, and how. `keys` (the key set) and `hits`
# (with its progression over the scenario) are always compared. The others are deterministic too
# and compared as well; `source_address` with its port masked (ephemeral ports differ). Not
# compared: `dequeued` (it depends on whether on_queue_ready ran before the next request).
STATE_FIELDS = ["hits", "counter", "gauge", "plugin_name", "property", "request_path", "source_address"]


def state_value(doc, key):
    if not isinstance(doc, dict):
        return ABSENT
    if key not in doc:
        return ABSENT
    v = doc[key]
    if key == "source_address" and isinstance(v, str):
        host, sep, port = v.rpartition(":")
        if sep and port.isdigit():
            v = host + ":<port>"
    return json.dumps(v)


RESP_DROP = {"date", "server", "x-request-id", "transfer-encoding"}
ECHO_DROP = {"x-request-id", "traceparent", "content-length", "transfer-encoding"}
ABSENT = "(absent)"


def resp_header_dropped(name):
    return name in RESP_DROP or name.startswith("x-envoy-")


def echo_header_dropped(name):
    return name in ECHO_DROP or name.startswith("x-forwarded-") or name.startswith("x-envoy-")


def group(pairs, dropped):
    """[(name, value)] → {lower-case name: [values in order]} without the dropped names."""
    out = {}
    for k, v in pairs:
        k = k.lower()
        if not dropped(k):
            out.setdefault(k, []).append(v)
    return out


def show(values):
    if values is None:
        return ABSENT
    if isinstance(values, list) and all(isinstance(v, str) for v in values):
        return values[0] if len(values) == 1 else json.dumps(values)
    if isinstance(values, str):
        return values
    return json.dumps(values, sort_keys=True)


def parse_echo(body):
    """(echo document, trailing text) when the body starts with the echo server's JSON, else None."""
    text = body.decode("utf-8", "replace")
    if not text.startswith("{"):
        return None
    try:
        doc, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    if not isinstance(doc, dict) or set(doc) != {"method", "path", "headers", "body"}:
        return None
    return doc, text[end:]


def body_rows(e, w, compare):
    """[(field, envoy, weir)] for the body, by the request's comparison mode."""
    if compare == "state":
        rows = []
        docs = []
        for r in (e, w):
            try:
                docs.append(json.loads(r["body"]))
            except ValueError:
                docs.append(None)
        de, dw = docs
        keys = [json.dumps(sorted(d)) if isinstance(d, dict) else "(not a JSON object)" for d in docs]
        rows.append(("json.keys", keys[0], keys[1]))
        for key in STATE_FIELDS:
            rows.append((f"json.{key}", state_value(de, key), state_value(dw, key)))
        return rows
    pe, pw = parse_echo(e["body"]), parse_echo(w["body"])
    if pe is None or pw is None:
        return [("body", e["body"].decode("utf-8", "replace"), w["body"].decode("utf-8", "replace"))]
    (de, te), (dw, tw) = pe, pw
    rows = [("upstream.method", de["method"], dw["method"]),
            ("upstream.path", de["path"], dw["path"])]
    he, hw = group(de["headers"], echo_header_dropped), group(dw["headers"], echo_header_dropped)
    for name in sorted(set(he) | set(hw)):
        rows.append((f"upstream.header {name}", show(he.get(name)), show(hw.get(name))))
    rows.append(("upstream.body", de["body"], dw["body"]))
    if te or tw:
        rows.append(("body after the JSON", te, tw))
    return rows


def compare(e, w, compare_mode):
    """[(field, envoy, weir, same)] for one request."""
    if "error" in e or "error" in w:
        ve = e.get("error") or str(e["status"])
        vw = w.get("error") or str(w["status"])
        return [("status", ve, vw, ve == vw)]
    rows = [("status", str(e["status"]), str(w["status"]))]
    if compare_mode != "status":
        brows = body_rows(e, w, compare_mode)
        bodies_same = all(a == b for _, a, b in brows)
        he, hw = group(e["headers"], resp_header_dropped), group(w["headers"], resp_header_dropped)
        if bodies_same:
            he.pop("content-length", None)
            hw.pop("content-length", None)
        for name in sorted(set(he) | set(hw)):
            rows.append((f"header {name}", show(he.get(name)), show(hw.get(name))))
        rows.extend(brows)
    return [(f, a, b, a == b) for f, a, b in rows]


# ------------------------------------------------------------------------------ running
class Run:
    def __init__(self, args):
        self.args = args
        self.work = args.work
        self.logs = os.path.join(self.work, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.procs = Processes(os.path.join(self.work, "pids"))
        self.rows = []      # (scenario, request, field, envoy, weir, same)
        self.raw = []       # full responses, for report.json

    def add(self, scenario, request, field, ve, vw, same):
        self.rows.append((scenario, request, field, ve, vw, same))

    def scenario(self, sc, echo_port):
        name = sc["name"]
        ep, ea, wp, wa = free_port(), free_port(), free_port(), free_port()
        ecfg = os.path.join(self.work, f"envoy-{name}.json")
        wcfg = os.path.join(self.work, f"weir-{name}.json")
        with open(ecfg, "w") as f:
            json.dump(envoy_config(sc, ep, ea, echo_port, self.args.filters), f, indent=2)
        data_dir = os.path.join(self.work, "weir-data")
        os.makedirs(data_dir, exist_ok=True)
        with open(wcfg, "w") as f:
            json.dump(weir_config(sc, wp, wa, echo_port, self.args.filters, data_dir), f, indent=2)
        elog = os.path.join(self.logs, f"{name}-envoy.log")
        wlog = os.path.join(self.logs, f"{name}-weir.log")
        envoy = self.procs.spawn([self.args.envoy, "-c", ecfg, "--concurrency", "1", "--disable-hot-restart",
                                  "--log-level", "warn", "--component-log-level", "wasm:info"], elog)
        weir = self.procs.spawn([self.args.weir, "serve", "--config", wcfg, "--workers", "1"], wlog)
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            e_err = wait_ready(envoy, f"http://{HOST}:{ea}/ready", ep, deadline)
            w_err = wait_ready(weir, f"http://{HOST}:{wa}/readyz", wp, deadline)
            if e_err:
                raise HarnessError(f"scenario {name}: Envoy {e_err} (config {ecfg}, log {elog}):\n{log_tail(elog)}")
            if w_err:
                # Envoy took this chain, Weir did not: a difference, reported as one row.
                print(f"[diff] scenario {name}: Weir {w_err}; log {wlog}:\n{log_tail(wlog)}", file=sys.stderr)
                self.add(name, "(start-up)", "ready", "ready", f"failed: {w_err}", False)
                return
            hits = {"envoy": [], "weir": []}
            for r in sc["requests"]:
                if r["delay"]:
                    time.sleep(r["delay"])
                e = send(ep, r)
                w = send(wp, r)
                self.raw.append({"scenario": name, "request": r["label"],
                                 "envoy": jsonable(e), "weir": jsonable(w)})
                for field, ve, vw, same in compare(e, w, r["compare"]):
                    self.add(name, r["label"], field, ve, vw, same)
                if r["compare"] == "state":
                    for side, resp in (("envoy", e), ("weir", w)):
                        try:
                            hits[side].append(json.loads(resp["body"]).get("hits"))
                        except (KeyError, ValueError, AttributeError):
                            hits[side].append(None)
            if hits["envoy"]:
                he, hw = json.dumps(hits["envoy"]), json.dumps(hits["weir"])
                self.add(name, "(all requests)", "hits progression", he, hw, he == hw)
        finally:
            self.procs.stop(envoy)
            self.procs.stop(weir)

    def go(self):
        echo_port = free_port()
        echo = EchoServer((HOST, echo_port), EchoHandler)
        t = threading.Thread(target=echo.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        t.start()
        print(f"[diff] echo upstream on {HOST}:{echo_port}; work dir {self.work}", file=sys.stderr)
        try:
            wanted = set(self.args.only.split(",")) if self.args.only else None
            known = {sc["name"] for sc in SCENARIOS}
            if wanted and not wanted <= known:
                raise HarnessError(f"--only: unknown scenario(s) {sorted(wanted - known)}; known: {sorted(known)}")
            for sc in SCENARIOS:
                if wanted and sc["name"] not in wanted:
                    continue
                t0 = time.monotonic()
                self.scenario(sc, echo_port)
                print(f"[diff] scenario {sc['name']}: {time.monotonic() - t0:.1f} s", file=sys.stderr)
        finally:
            self.procs.stop_all()
            echo.shutdown()
            echo.server_close()


def jsonable(resp):
    if "error" in resp:
        return resp
    return {"status": resp["status"], "headers": resp["headers"],
            "body": resp["body"].decode("utf-8", "replace")}


def clip(text, width):
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(rows, width, diff_only):
    shown = [r for r in rows if not (diff_only and r[5])]
    head = ("scenario", "request", "field", "envoy", "weir", "result")
    cells = [head] + [(s, q, f, clip(a, width), clip(b, width), "same" if ok else "DIFF")
                      for s, q, f, a, b, ok in shown]
    widths = [max(len(c[i]) for c in cells) for i in range(6)]
    widths[1] = min(widths[1], 40)
    widths[2] = min(widths[2], 36)
    for i, c in enumerate(cells):
        print(" | ".join(clip(v, widths[j]).ljust(widths[j]) for j, v in enumerate(c)).rstrip())
        if i == 0:
            print("-+-".join("-" * w for w in widths))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envoy", required=True, help="the envoy binary")
    ap.add_argument("--weir", required=True, help="the weir binary")
    ap.add_argument("--filters", required=True, help="folder with the test filters' .wasm files")
    ap.add_argument("--work", default=os.path.join(HERE, ".work"), help="configs, logs and report go here")
    ap.add_argument("--strict", action="store_true", help="exit 1 when anything differs")
    ap.add_argument("--only", help="comma-separated scenario names: " + ",".join(s["name"] for s in SCENARIOS))
    ap.add_argument("--diff-only", action="store_true", help="print only the DIFF rows of the table")
    ap.add_argument("--width", type=int, default=44, help="truncate table values to this width (default 44)")
    args = ap.parse_args()

    for path in (args.envoy, args.weir):
        if not os.access(path, os.X_OK):
            print(f"[diff] ERROR: {path} is not an executable", file=sys.stderr)
            return 2
    for sc in SCENARIOS:
        for f in sc["filters"]:
            p = os.path.join(args.filters, f["module"] + ".wasm")
            if not os.path.isfile(p):
                print(f"[diff] ERROR: missing filter {p} (cargo build -p weir-tests builds it)", file=sys.stderr)
                return 2
    os.makedirs(args.work, exist_ok=True)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)

    run = Run(args)
    t0 = time.monotonic()
    failure = None
    try:
        run.go()
    except HarnessError as e:
        failure = str(e)
    elapsed = time.monotonic() - t0
    if failure and not run.rows:
        print(f"[diff] ERROR: {failure}", file=sys.stderr)
        return 2

    print_table(run.rows, args.width, args.diff_only)
    diffs = [r for r in run.rows if not r[5]]
    if diffs:
        print("\nDifferences in full:")
        for s, q, f, a, b, _ in diffs:
            print(f"* {s} / {q} / {f}\n    envoy: {a!r}\n    weir:  {b!r}")
    print("\nPer scenario:")
    for sc in SCENARIOS:
        rs = [r for r in run.rows if r[0] == sc["name"]]
        if rs:
            nd = sum(1 for r in rs if not r[5])
            print(f"  {sc['name']:<14} {len(rs):3d} compared, {nd:3d} DIFF")
    same = len(run.rows) - len(diffs)
    print(f"\ndifferential: {len(run.rows)} compared, {same} same, {len(diffs)} DIFF ({elapsed:.1f} s)")
    with open(os.path.join(args.work, "report.json"), "w") as f:
        json.dump({"rows": [dict(zip(("scenario", "request", "field", "envoy", "weir", "same"), r))
                            for r in run.rows], "responses": run.raw}, f, indent=2)
    print(f"full values and raw responses: {os.path.join(args.work, 'report.json')}; logs: {run.logs}")
    if failure:
        print(f"[diff] ERROR (the rows above are what ran before it): {failure}", file=sys.stderr)
        return 2
    return 1 if (args.strict and diffs) else 0


if __name__ == "__main__":
    sys.exit(main())
