// The proxy-wasm hostcalls this filter uses (module "env", ABI 0.2.1), and the conversions between AssemblyScript
// values and guest memory. The host hands the filter bytes in blocks it allocates with `proxy_on_memory_allocate`
// (index.ts), `heap.alloc` here: `take` copies such a block into an ArrayBuffer and frees it.

@external("env", "proxy_log")
declare function proxy_log(level: u32, msg: usize, msgLen: usize): u32;
@external("env", "proxy_get_buffer_bytes")
declare function proxy_get_buffer_bytes(bufferType: u32, start: u32, maxSize: u32, retPtr: usize, retLen: usize): u32;
@external("env", "proxy_get_header_map_value")
declare function proxy_get_header_map_value(mapType: u32, key: usize, keyLen: usize, retPtr: usize, retLen: usize): u32;
@external("env", "proxy_add_header_map_value")
declare function proxy_add_header_map_value(mapType: u32, key: usize, keyLen: usize, value: usize, valueLen: usize): u32;
@external("env", "proxy_send_local_response")
declare function proxy_send_local_response(status: u32, details: usize, detailsLen: usize, body: usize, bodyLen: usize, headers: usize, headersLen: usize, grpcStatus: i32): u32;
@external("env", "proxy_http_call")
declare function proxy_http_call(upstream: usize, upstreamLen: usize, headers: usize, headersLen: usize, body: usize, bodyLen: usize, trailers: usize, trailersLen: usize, timeoutMs: u32, retToken: usize): u32;
@external("env", "proxy_continue_stream")
export declare function proxy_continue_stream(streamType: u32): u32;
@external("env", "proxy_set_effective_context")
export declare function proxy_set_effective_context(contextId: u32): u32;
@external("env", "proxy_define_metric")
declare function proxy_define_metric(metricType: u32, name: usize, nameLen: usize, retId: usize): u32;
@external("env", "proxy_increment_metric")
export declare function proxy_increment_metric(metricId: u32, delta: i64): u32;

export const LOG_ERROR: u32 = 4;
export const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;
export const MAP_REQUEST_HEADERS: u32 = 0;
export const MAP_RESPONSE_HEADERS: u32 = 2;
export const MAP_CALL_RESPONSE_HEADERS: u32 = 6;
export const STREAM_REQUEST: u32 = 0;
export const ACTION_CONTINUE: u32 = 0;
export const ACTION_PAUSE: u32 = 1;

// Out-parameters: the host writes a pointer and a length (u32 each) here.
const OUT: usize = memory.data(8);

function ptr(b: ArrayBuffer): usize {
  return changetype<usize>(b);
}

export function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

// The bytes of a host block, as an ArrayBuffer; the block is freed. (0, 0) is the empty value.
function take(at: usize, len: usize): ArrayBuffer {
  const out = new ArrayBuffer(<i32>len);
  if (at != 0) {
    memory.copy(ptr(out), at, len);
    heap.free(at);
  }
  return out;
}

export function log(level: u32, message: string): void {
  const bytes = utf8(message);
  proxy_log(level, ptr(bytes), bytes.byteLength);
}

export function getBufferBytes(bufferType: u32, size: u32): ArrayBuffer {
  store<u32>(OUT, 0);
  store<u32>(OUT + 4, 0);
  if (proxy_get_buffer_bytes(bufferType, 0, size, OUT, OUT + 4) != 0) return new ArrayBuffer(0);
  return take(load<u32>(OUT), load<u32>(OUT + 4));
}

// The first value of `name` in map `mapType`, or null when it is absent.
export function getHeader(mapType: u32, name: ArrayBuffer): ArrayBuffer | null {
  store<u32>(OUT, 0);
  store<u32>(OUT + 4, 0);
  if (proxy_get_header_map_value(mapType, ptr(name), name.byteLength, OUT, OUT + 4) != 0) return null;
  return take(load<u32>(OUT), load<u32>(OUT + 4));
}

export function addHeader(mapType: u32, name: ArrayBuffer, value: ArrayBuffer): void {
  proxy_add_header_map_value(mapType, ptr(name), name.byteLength, ptr(value), value.byteLength);
}

// Serializes header pairs (ABI §2.1): the count, each key and value length, then "key\0value\0" each.
export function encodePairs(pairs: ArrayBuffer[]): ArrayBuffer {
  const n = pairs.length / 2;
  let size = 4 + 8 * n;
  for (let i = 0; i < pairs.length; i++) size += pairs[i].byteLength + 1;
  const out = new ArrayBuffer(size);
  const base = ptr(out);
  store<u32>(base, n);
  let at = base + 4 + 8 * n;
  for (let i = 0; i < pairs.length; i++) {
    const len = pairs[i].byteLength;
    store<u32>(base + 4 + 4 * i, len);
    memory.copy(at, ptr(pairs[i]), len);
    store<u8>(at + len, 0);
    at += len + 1;
  }
  return out;
}

export function sendJson(status: u32, body: string): void {
  const headers = encodePairs([utf8("content-type"), utf8("application/json")]);
  const bytes = utf8(body);
  proxy_send_local_response(status, 0, 0, ptr(bytes), bytes.byteLength, ptr(headers), headers.byteLength, -1);
}

// Sends GET `path` to `cluster` (`:authority` = the cluster); the token, or -1 when the host refused it.
export function httpCall(cluster: ArrayBuffer, path: ArrayBuffer, timeoutMs: u32): i64 {
  const headers = encodePairs([utf8(":method"), utf8("GET"), utf8(":path"), path, utf8(":authority"), cluster]);
  store<u32>(OUT, 0);
  const status = proxy_http_call(ptr(cluster), cluster.byteLength, ptr(headers), headers.byteLength, 0, 0, 0, 0, timeoutMs, OUT);
  return status == 0 ? <i64>load<u32>(OUT) : -1;
}

export function defineCounter(name: string): u32 {
  const bytes = utf8(name);
  store<u32>(OUT, 0);
  proxy_define_metric(0, ptr(bytes), bytes.byteLength, OUT);
  return load<u32>(OUT);
}

export function equal(a: ArrayBuffer, b: ArrayBuffer): bool {
  return a.byteLength == b.byteLength && memory.compare(ptr(a), ptr(b), a.byteLength) == 0;
}
