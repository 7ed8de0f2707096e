/*
 * The example filter in C, written against the raw proxy-wasm ABI (0.2.1) with wasi-libc: no SDK.
 * The behaviour, the same in every language, is specified in docs/filters-in-other-languages.md.
 *
 * Built as a WASI reactor (clang --target=wasm32-wasi -mexec-model=reactor): the module exports `_initialize`
 * (wasi-libc's constructors), the host allocates through `proxy_on_memory_allocate` (malloc) and the filter frees
 * every block the host hands it with free().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

/* ---------------------------------------------------------------- hostcalls (module env) */
IMPORT(proxy_log) int32_t proxy_log(int32_t level, const char *msg, size_t len);
IMPORT(proxy_get_buffer_bytes)
int32_t proxy_get_buffer_bytes(int32_t type, int32_t start, int32_t max, char **ptr, size_t *len);
IMPORT(proxy_get_header_map_value)
int32_t proxy_get_header_map_value(int32_t type, const char *key, size_t key_len, char **ptr, size_t *len);
IMPORT(proxy_add_header_map_value)
int32_t proxy_add_header_map_value(int32_t type, const char *key, size_t key_len, const char *val, size_t val_len);
IMPORT(proxy_send_local_response)
int32_t proxy_send_local_response(int32_t status, const char *details, size_t details_len, const char *body,
                                  size_t body_len, const char *headers, size_t headers_len, int32_t grpc_status);
IMPORT(proxy_http_call)
int32_t proxy_http_call(const char *upstream, size_t upstream_len, const char *headers, size_t headers_len,
                        const char *body, size_t body_len, const char *trailers, size_t trailers_len,
                        uint32_t timeout_ms, uint32_t *token);
IMPORT(proxy_continue_stream) int32_t proxy_continue_stream(int32_t stream_type);
IMPORT(proxy_set_effective_context) int32_t proxy_set_effective_context(uint32_t context_id);
IMPORT(proxy_define_metric) int32_t proxy_define_metric(int32_t type, const char *name, size_t len, uint32_t *id);
IMPORT(proxy_increment_metric) int32_t proxy_increment_metric(uint32_t id, int64_t delta);

enum { LOG_ERROR = 4 };
enum { BUFFER_PLUGIN_CONFIGURATION = 7 };
enum { MAP_REQUEST_HEADERS = 0, MAP_RESPONSE_HEADERS = 2, MAP_CALL_RESPONSE_HEADERS = 6 };
enum { STREAM_REQUEST = 0 };
enum { METRIC_COUNTER = 0 };
enum { ACTION_CONTINUE = 0, ACTION_PAUSE = 1 };

/* ---------------------------------------------------------------- ABI marker and allocator */
EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1(void) {}

EXPORT(proxy_on_memory_allocate) void *proxy_on_memory_allocate(size_t size) { return malloc(size ? size : 1); }

/* ---------------------------------------------------------------- small helpers */
typedef struct {
  char *ptr;
  size_t len;
} bytes;

static void log_error(const char *text) { proxy_log(LOG_ERROR, text, strlen(text)); }

/* Serializes pairs (ABI §2.1): count, then each key and value length, then "key\0value\0" each. */
static bytes encode_pairs(const char *const *kv, size_t n) {
  size_t size = 4 + 8 * n;
  for (size_t i = 0; i < 2 * n; i++) size += strlen(kv[i]) + 1;
  bytes out = {malloc(size), size};
  uint32_t *head = (uint32_t *)out.ptr; /* wasm32 is little-endian, as the ABI wants */
  head[0] = (uint32_t)n;
  char *p = out.ptr + 4 + 8 * n;
  for (size_t i = 0; i < 2 * n; i++) {
    size_t len = strlen(kv[i]);
    head[1 + i] = (uint32_t)len;
    memcpy(p, kv[i], len + 1);
    p += len + 1;
  }
  return out;
}

static const char JSON_TYPE[] = "content-type";
static const char JSON_VALUE[] = "application/json";

static void send_json(int32_t status, const char *body) {
  const char *kv[] = {JSON_TYPE, JSON_VALUE};
  bytes headers = encode_pairs(kv, 1);
  proxy_send_local_response(status, "", 0, body, strlen(body), headers.ptr, headers.len, -1);
  free(headers.ptr);
}

/* ---------------------------------------------------------------- configuration */
#define N_KEYS 5
static const char *const KEYS[N_KEYS] = {"tag", "deny_path", "callout_cluster", "callout_path", "callout_header"};
enum { TAG, DENY_PATH, CALLOUT_CLUSTER, CALLOUT_PATH, CALLOUT_HEADER };

typedef struct {
  char *value[N_KEYS];
} config;

static void config_free(config *c) {
  for (int i = 0; i < N_KEYS; i++) free(c->value[i]);
  free(c);
}

typedef struct {
  const char *p, *end;
  char error[160];
} parser;

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int fail(parser *ps, const char *what) {
  if (!ps->error[0]) strncpy(ps->error, what, sizeof ps->error - 1);
  return 0;
}

static void put_utf8(char **o, uint32_t c) {
  if (c < 0x80) {
    *(*o)++ = (char)c;
  } else if (c < 0x800) {
    *(*o)++ = (char)(0xC0 | (c >> 6));
    *(*o)++ = (char)(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    *(*o)++ = (char)(0xE0 | (c >> 12));
    *(*o)++ = (char)(0x80 | ((c >> 6) & 0x3F));
    *(*o)++ = (char)(0x80 | (c & 0x3F));
  } else {
    *(*o)++ = (char)(0xF0 | (c >> 18));
    *(*o)++ = (char)(0x80 | ((c >> 12) & 0x3F));
    *(*o)++ = (char)(0x80 | ((c >> 6) & 0x3F));
    *(*o)++ = (char)(0x80 | (c & 0x3F));
  }
}

static int hex4(parser *ps, uint32_t *out) {
  if (ps->end - ps->p < 4) return fail(ps, "a \\u escape needs 4 hex digits");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    char c = *ps->p++;
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
    else return fail(ps, "a \\u escape needs 4 hex digits");
  }
  *out = v;
  return 1;
}

/* A JSON string at ps->p (the opening quote): a new NUL-terminated UTF-8 copy, or NULL. */
static char *parse_string(parser *ps) {
  if (ps->p >= ps->end || *ps->p != '"') return fail(ps, "expected a string"), NULL;
  ps->p++;
  char *out = malloc((size_t)(ps->end - ps->p) + 1), *o = out;
  while (ps->p < ps->end && *ps->p != '"') {
    unsigned char c = (unsigned char)*ps->p++;
    if (c < 0x20) return free(out), fail(ps, "a control character in a string"), NULL;
    if (c != '\\') {
      *o++ = (char)c;
      continue;
    }
    if (ps->p >= ps->end) break;
    char e = *ps->p++;
    uint32_t u;
    switch (e) {
      case '"': case '\\': case '/': *o++ = e; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u':
        if (!hex4(ps, &u)) return free(out), NULL;
        if (u >= 0xD800 && u < 0xDC00) { /* a surrogate pair */
          uint32_t low;
          if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') return free(out), fail(ps, "a lone surrogate"), NULL;
          ps->p += 2;
          if (!hex4(ps, &low) || low < 0xDC00 || low > 0xDFFF) return free(out), fail(ps, "a lone surrogate"), NULL;
          u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
        } else if (u >= 0xDC00 && u < 0xE000) {
          return free(out), fail(ps, "a lone surrogate"), NULL;
        }
        put_utf8(&o, u);
        break;
      default: return free(out), fail(ps, "an unknown escape in a string"), NULL;
    }
  }
  if (ps->p >= ps->end) return free(out), fail(ps, "an unterminated string"), NULL;
  ps->p++;
  *o = 0;
  return out;
}

/* {"tag": "...", ...}: the five keys, each a string, each once, nothing else. NULL (and ps->error) if not. */
static config *parse_config(const char *text, size_t len, parser *ps) {
  ps->p = text;
  ps->end = text + len;
  ps->error[0] = 0;
  config *c = calloc(1, sizeof *c);
  skip_ws(ps);
  if (ps->p >= ps->end || *ps->p != '{') return fail(ps, "the configuration must be a JSON object"), config_free(c), NULL;
  ps->p++;
  skip_ws(ps);
  int first = 1;
  while (ps->p < ps->end && *ps->p != '}') {
    if (!first) {
      if (*ps->p != ',') return fail(ps, "expected , or } in the object"), config_free(c), NULL;
      ps->p++;
      skip_ws(ps);
    }
    first = 0;
    char *key = parse_string(ps);
    if (!key) return config_free(c), NULL;
    int index = -1;
    for (int i = 0; i < N_KEYS; i++)
      if (strcmp(key, KEYS[i]) == 0) index = i;
    if (index < 0) {
      snprintf(ps->error, sizeof ps->error, "unknown key `%.60s` (known: tag, deny_path, callout_cluster, callout_path, callout_header)", key);
      return free(key), config_free(c), NULL;
    }
    free(key);
    if (c->value[index]) {
      snprintf(ps->error, sizeof ps->error, "`%s` appears twice", KEYS[index]);
      return config_free(c), NULL;
    }
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != ':') return fail(ps, "expected : after a key"), config_free(c), NULL;
    ps->p++;
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '"') {
      snprintf(ps->error, sizeof ps->error, "`%s` must be a string", KEYS[index]);
      return config_free(c), NULL;
    }
    if (!(c->value[index] = parse_string(ps))) return config_free(c), NULL;
    skip_ws(ps);
  }
  if (ps->p >= ps->end) return fail(ps, "the object is not closed"), config_free(c), NULL;
  ps->p++;
  skip_ws(ps);
  if (ps->p != ps->end) return fail(ps, "text after the JSON object"), config_free(c), NULL;
  for (int i = 0; i < N_KEYS; i++) {
    if (!c->value[i]) {
      snprintf(ps->error, sizeof ps->error, "missing key `%s` (a string)", KEYS[i]);
      return config_free(c), NULL;
    }
  }
  return c;
}

/* ---------------------------------------------------------------- contexts */
typedef struct {
  uint32_t id;
  config *config;   /* roots: their configuration, NULL until on_configure accepts one */
  uint32_t root;    /* streams: their root context */
  uint32_t token;   /* streams: the outstanding callout (when waiting) */
  int waiting;      /* streams: 1 while a callout is outstanding */
  char *callout;    /* streams: the callout answer's header, NULL if none */
  size_t callout_len;
} context;

static context *contexts;
static size_t n_contexts, cap_contexts;
static uint32_t requests_metric;

static context *find(uint32_t id) {
  for (size_t i = 0; i < n_contexts; i++)
    if (contexts[i].id == id) return &contexts[i];
  return NULL;
}

static config *config_of(context *stream) {
  context *root = find(stream->root);
  return root ? root->config : NULL;
}

EXPORT(proxy_on_context_create) void proxy_on_context_create(uint32_t id, uint32_t parent) {
  if (n_contexts == cap_contexts) {
    cap_contexts = cap_contexts ? 2 * cap_contexts : 16;
    contexts = realloc(contexts, cap_contexts * sizeof *contexts);
  }
  contexts[n_contexts++] = (context){.id = id, .root = parent};
}

EXPORT(proxy_on_delete) void proxy_on_delete(uint32_t id) {
  context *c = find(id);
  if (!c) return;
  if (c->config) config_free(c->config);
  free(c->callout);
  *c = contexts[--n_contexts];
}

EXPORT(proxy_on_done) int32_t proxy_on_done(uint32_t id) { return 1; }

EXPORT(proxy_on_vm_start) int32_t proxy_on_vm_start(uint32_t root, size_t size) { return 1; }

EXPORT(proxy_on_configure) int32_t proxy_on_configure(uint32_t root_id, size_t size) {
  context *root = find(root_id);
  char *text = NULL;
  size_t len = 0;
  proxy_get_buffer_bytes(BUFFER_PLUGIN_CONFIGURATION, 0, (int32_t)size, &text, &len);
  parser ps;
  config *parsed = parse_config(text ? text : "", len, &ps);
  free(text);
  if (!parsed || !root) {
    char message[200];
    snprintf(message, sizeof message, "example: bad configuration: %s", ps.error);
    log_error(message);
    if (parsed) config_free(parsed);
    return 0;
  }
  if (root->config) config_free(root->config);
  root->config = parsed;
  static const char name[] = "example_requests";
  proxy_define_metric(METRIC_COUNTER, name, sizeof name - 1, &requests_metric);
  return 1;
}

static void add_header(int32_t map, const char *name, const char *value, size_t value_len) {
  proxy_add_header_map_value(map, name, strlen(name), value, value_len);
}

EXPORT(proxy_on_request_headers) int32_t proxy_on_request_headers(uint32_t id, size_t n, int32_t eos) {
  context *stream = find(id);
  config *c = stream ? config_of(stream) : NULL;
  if (!c) return ACTION_CONTINUE;
  proxy_increment_metric(requests_metric, 1);
  add_header(MAP_REQUEST_HEADERS, "x-example-request", c->value[TAG], strlen(c->value[TAG]));

  char *path = NULL;
  size_t path_len = 0;
  int found = proxy_get_header_map_value(MAP_REQUEST_HEADERS, ":path", 5, &path, &path_len) == 0;
  int denied = found && path_len == strlen(c->value[DENY_PATH]) && memcmp(path, c->value[DENY_PATH], path_len) == 0;
  free(path);
  if (denied) {
    send_json(403, "{\"error\":\"forbidden\"}");
    return ACTION_PAUSE;
  }

  const char *kv[] = {":method", "GET", ":path", c->value[CALLOUT_PATH], ":authority", c->value[CALLOUT_CLUSTER]};
  bytes headers = encode_pairs(kv, 3);
  uint32_t token = 0;
  int32_t status = proxy_http_call(c->value[CALLOUT_CLUSTER], strlen(c->value[CALLOUT_CLUSTER]), headers.ptr,
                                   headers.len, NULL, 0, NULL, 0, 5000, &token);
  free(headers.ptr);
  if (status != 0) {
    send_json(502, "{\"error\":\"callout failed\"}");
    return ACTION_PAUSE;
  }
  stream = find(id); /* the table may have moved: nothing is created in between, but stay safe */
  stream->token = token;
  stream->waiting = 1;
  return ACTION_PAUSE;
}

EXPORT(proxy_on_http_call_response)
void proxy_on_http_call_response(uint32_t root, uint32_t token, size_t n_headers, size_t body_size, size_t n_trailers) {
  context *stream = NULL;
  for (size_t i = 0; i < n_contexts; i++)
    if (contexts[i].waiting && contexts[i].token == token) stream = &contexts[i];
  if (!stream) return; /* the request is gone */
  stream->waiting = 0;
  proxy_set_effective_context(stream->id);
  if (n_headers == 0) {
    send_json(502, "{\"error\":\"callout failed\"}");
    return;
  }
  config *c = config_of(stream);
  char *value = NULL;
  size_t len = 0;
  const char *name = c->value[CALLOUT_HEADER];
  if (proxy_get_header_map_value(MAP_CALL_RESPONSE_HEADERS, name, strlen(name), &value, &len) == 0) {
    free(stream->callout);
    stream->callout = value ? value : calloc(1, 1);
    stream->callout_len = len;
  }
  proxy_continue_stream(STREAM_REQUEST);
}

EXPORT(proxy_on_response_headers) int32_t proxy_on_response_headers(uint32_t id, size_t n, int32_t eos) {
  context *stream = find(id);
  config *c = stream ? config_of(stream) : NULL;
  if (!c) return ACTION_CONTINUE;
  add_header(MAP_RESPONSE_HEADERS, "x-example-response", c->value[TAG], strlen(c->value[TAG]));
  if (stream->callout) add_header(MAP_RESPONSE_HEADERS, "x-example-callout", stream->callout, stream->callout_len);
  return ACTION_CONTINUE;
}
