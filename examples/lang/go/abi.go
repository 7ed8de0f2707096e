// The proxy-wasm hostcalls this filter uses (module "env", ABI 0.2.1), the allocator the host calls, and the
// conversions between Go values and guest memory. Standard library only.
package main

import "unsafe"

//go:wasmimport env proxy_log
func proxyLog(level uint32, msg unsafe.Pointer, msgLen uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(bufferType uint32, start uint32, maxSize uint32, retPtr unsafe.Pointer, retLen unsafe.Pointer) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(mapType uint32, key unsafe.Pointer, keyLen uint32, retPtr unsafe.Pointer, retLen unsafe.Pointer) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(mapType uint32, key unsafe.Pointer, keyLen uint32, value unsafe.Pointer, valueLen uint32) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(status uint32, details unsafe.Pointer, detailsLen uint32, body unsafe.Pointer, bodyLen uint32, headers unsafe.Pointer, headersLen uint32, grpcStatus int32) uint32

//go:wasmimport env proxy_http_call
func proxyHTTPCall(upstream unsafe.Pointer, upstreamLen uint32, headers unsafe.Pointer, headersLen uint32, body unsafe.Pointer, bodyLen uint32, trailers unsafe.Pointer, trailersLen uint32, timeoutMs uint32, retToken unsafe.Pointer) uint32

//go:wasmimport env proxy_continue_stream
func proxyContinueStream(streamType uint32) uint32

//go:wasmimport env proxy_set_effective_context
func proxySetEffectiveContext(contextID uint32) uint32

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(metricType uint32, name unsafe.Pointer, nameLen uint32, retID unsafe.Pointer) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(metricID uint32, delta int64) uint32

const (
	logError = 4

	bufferPluginConfiguration = 7

	mapRequestHeaders      = 0
	mapResponseHeaders     = 2
	mapCallResponseHeaders = 6

	streamRequest = 0
	metricCounter = 0

	actionContinue = 0
	actionPause    = 1
)

// The ABI version marker: its name is what counts, it is never called.
//
//go:wasmexport proxy_abi_version_0_2_1
func proxyABIVersion() {}

// Blocks the host allocated in guest memory, kept here (so the garbage collector keeps them) until the filter
// takes them over with take.
var allocations = map[uint32][]byte{}

// The host calls it to hand the filter bytes (ABI §1.1): one block per value, of exactly that size.
//
//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) uint32 {
	block := make([]byte, max(size, 1))
	ptr := uint32(uintptr(unsafe.Pointer(&block[0])))
	allocations[ptr] = block[:size]
	return ptr
}

// take returns the bytes the host wrote at ptr and forgets the block (ptr 0: nothing, the ABI's empty value).
func take(ptr, size uint32) []byte {
	block, ok := allocations[ptr]
	if !ok {
		return nil
	}
	delete(allocations, ptr)
	return block[:size]
}

// bytesPtr is the address of b's bytes, or nil when b is empty (the ABI's (0, 0)).
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func stringPtr(s string) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.StringData(s))
}

func logf(level uint32, msg string) {
	proxyLog(level, stringPtr(msg), uint32(len(msg)))
}

// encodePairs serializes header pairs (ABI §2.1): the count, each key and value length, then "key\0value\0" each.
func encodePairs(pairs [][2]string) []byte {
	size := 4 + 8*len(pairs)
	for _, kv := range pairs {
		size += len(kv[0]) + len(kv[1]) + 2
	}
	out := make([]byte, 0, size)
	out = appendU32(out, uint32(len(pairs)))
	for _, kv := range pairs {
		out = appendU32(out, uint32(len(kv[0])))
		out = appendU32(out, uint32(len(kv[1])))
	}
	for _, kv := range pairs {
		out = append(out, kv[0]...)
		out = append(out, 0)
		out = append(out, kv[1]...)
		out = append(out, 0)
	}
	return out
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func getBufferBytes(bufferType, size uint32) []byte {
	var ptr, n uint32
	if proxyGetBufferBytes(bufferType, 0, size, unsafe.Pointer(&ptr), unsafe.Pointer(&n)) != 0 {
		return nil
	}
	return take(ptr, n)
}

// getHeader is the first value of name in map mapType; ok is false when it is absent.
func getHeader(mapType uint32, name string) (value string, ok bool) {
	var ptr, n uint32
	if proxyGetHeaderMapValue(mapType, stringPtr(name), uint32(len(name)), unsafe.Pointer(&ptr), unsafe.Pointer(&n)) != 0 {
		return "", false
	}
	return string(take(ptr, n)), true
}

func addHeader(mapType uint32, name, value string) {
	proxyAddHeaderMapValue(mapType, stringPtr(name), uint32(len(name)), stringPtr(value), uint32(len(value)))
}

func sendJSON(status uint32, body string) {
	headers := encodePairs([][2]string{{"content-type", "application/json"}})
	proxySendLocalResponse(status, nil, 0, stringPtr(body), uint32(len(body)), bytesPtr(headers), uint32(len(headers)), -1)
}

// httpCall sends GET path to cluster (`:authority` = the cluster) and returns the callout's token.
func httpCall(cluster, path string, timeoutMs uint32) (token uint32, ok bool) {
	headers := encodePairs([][2]string{{":method", "GET"}, {":path", path}, {":authority", cluster}})
	status := proxyHTTPCall(stringPtr(cluster), uint32(len(cluster)), bytesPtr(headers), uint32(len(headers)), nil, 0, nil, 0, timeoutMs, unsafe.Pointer(&token))
	return token, status == 0
}

func defineCounter(name string) uint32 {
	var id uint32
	proxyDefineMetric(metricCounter, stringPtr(name), uint32(len(name)), unsafe.Pointer(&id))
	return id
}
