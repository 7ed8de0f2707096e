// The example filter in AssemblyScript, written against the raw proxy-wasm ABI 0.2.1 (no SDK). The behaviour, the
// same in every language, is specified in docs/filters-in-other-languages.md.
//
// Built with `asc --exportStart _initialize` (asconfig.json): the module's start-up (its globals) runs when the
// host calls `_initialize`, as for a WASI reactor; `abort` goes to onAbort below instead of an `env.abort` import.

import {
  ACTION_CONTINUE, ACTION_PAUSE, BUFFER_PLUGIN_CONFIGURATION, LOG_ERROR, MAP_CALL_RESPONSE_HEADERS,
  MAP_REQUEST_HEADERS, MAP_RESPONSE_HEADERS, STREAM_REQUEST, addHeader, defineCounter, equal, getBufferBytes,
  getHeader, httpCall, log, proxy_continue_stream, proxy_increment_metric, proxy_set_effective_context, sendJson,
  utf8,
} from "./abi";
import { CALLOUT_CLUSTER, CALLOUT_HEADER, CALLOUT_PATH, Config, DENY_PATH, TAG, parseConfig } from "./config";

class Stream {
  calloutValue: ArrayBuffer | null = null;
  constructor(public root: u32) {}
}

const roots = new Map<u32, Config>(); // root context id → its configuration, once on_configure accepted one
const streams = new Map<u32, Stream>(); // stream context id → its state
const callouts = new Map<u32, u32>(); // outstanding callout token → stream context id
let requests: u32 = 0; // the example_requests counter

const PATH = utf8(":path");
const REQUEST_HEADER = utf8("x-example-request");
const RESPONSE_HEADER = utf8("x-example-response");
const CALLOUT_RESPONSE_HEADER = utf8("x-example-callout");

// `abort` (a failed assertion, an out-of-bounds index): log it, then trap.
function onAbort(message: string | null, file: string | null, line: u32, column: u32): void {
  log(5, "example: abort: " + (message === null ? "" : message) + " at " + (file === null ? "?" : file) + ":" + line.toString());
  unreachable();
}

// The ABI version marker: its name is what counts, it is never called.
export function proxy_abi_version_0_2_1(): void {}

// The host calls it to hand the filter bytes (ABI §1.1); abi.ts `take` frees the block.
export function proxy_on_memory_allocate(size: usize): usize {
  return heap.alloc(size > 0 ? size : 1);
}

export function proxy_on_context_create(id: u32, parent: u32): void {
  if (parent != 0) streams.set(id, new Stream(parent));
}

export function proxy_on_vm_start(root: u32, size: u32): u32 {
  return 1;
}

export function proxy_on_configure(root: u32, size: u32): u32 {
  const error: string[] = [""];
  const config = parseConfig(getBufferBytes(BUFFER_PLUGIN_CONFIGURATION, size), error);
  if (config === null) {
    log(LOG_ERROR, "example: bad configuration: " + error[0]);
    return 0;
  }
  roots.set(root, config);
  requests = defineCounter("example_requests");
  return 1;
}

function configOf(stream: Stream): Config | null {
  return roots.has(stream.root) ? roots.get(stream.root) : null;
}

export function proxy_on_request_headers(id: u32, numHeaders: u32, endOfStream: u32): u32 {
  if (!streams.has(id)) return ACTION_CONTINUE;
  const config = configOf(streams.get(id));
  if (config === null) return ACTION_CONTINUE;
  proxy_increment_metric(requests, 1);
  addHeader(MAP_REQUEST_HEADERS, REQUEST_HEADER, config.values[TAG]);
  const path = getHeader(MAP_REQUEST_HEADERS, PATH);
  if (path !== null && equal(path, config.values[DENY_PATH])) {
    sendJson(403, '{"error":"forbidden"}');
    return ACTION_PAUSE;
  }
  const token = httpCall(config.values[CALLOUT_CLUSTER], config.values[CALLOUT_PATH], 5000);
  if (token < 0) {
    sendJson(502, '{"error":"callout failed"}');
    return ACTION_PAUSE;
  }
  callouts.set(<u32>token, id);
  return ACTION_PAUSE;
}

export function proxy_on_http_call_response(root: u32, token: u32, numHeaders: u32, bodySize: u32, numTrailers: u32): void {
  if (!callouts.has(token)) return;
  const id = callouts.get(token);
  callouts.delete(token);
  if (!streams.has(id)) return; // the request is gone
  const stream = streams.get(id);
  const config = configOf(stream);
  if (config === null) return;
  proxy_set_effective_context(id);
  if (numHeaders == 0) {
    sendJson(502, '{"error":"callout failed"}');
    return;
  }
  stream.calloutValue = getHeader(MAP_CALL_RESPONSE_HEADERS, config.values[CALLOUT_HEADER]);
  proxy_continue_stream(STREAM_REQUEST);
}

export function proxy_on_response_headers(id: u32, numHeaders: u32, endOfStream: u32): u32 {
  if (!streams.has(id)) return ACTION_CONTINUE;
  const stream = streams.get(id);
  const config = configOf(stream);
  if (config === null) return ACTION_CONTINUE;
  addHeader(MAP_RESPONSE_HEADERS, RESPONSE_HEADER, config.values[TAG]);
  const value = stream.calloutValue;
  if (value !== null) addHeader(MAP_RESPONSE_HEADERS, CALLOUT_RESPONSE_HEADER, value);
  return ACTION_CONTINUE;
}

export function proxy_on_done(id: u32): u32 {
  return 1;
}

export function proxy_on_delete(id: u32): void {
  streams.delete(id);
  roots.delete(id);
}
