// The configuration: a JSON object with five string keys, all required, no other key. A small parser for exactly
// that (the whole of JSON string syntax, UTF-8 in and out), since AssemblyScript's standard library has none.

export const KEYS: string[] = ["tag", "deny_path", "callout_cluster", "callout_path", "callout_header"];
export const TAG = 0;
export const DENY_PATH = 1;
export const CALLOUT_CLUSTER = 2;
export const CALLOUT_PATH = 3;
export const CALLOUT_HEADER = 4;

export class Config {
  // The values in the order of KEYS, as UTF-8 bytes.
  values: ArrayBuffer[] = [];
}

class Parser {
  at: i32 = 0;
  error: string = "";
  constructor(public text: Uint8Array) {}

  more(): bool {
    return this.at < this.text.length;
  }
  peek(): u8 {
    return this.text[this.at];
  }
  skipSpace(): void {
    while (this.more()) {
      const c = this.peek();
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.at++;
    }
  }
  fail(message: string): bool {
    if (this.error.length == 0) this.error = message;
    return false;
  }
  hex4(): i32 {
    if (this.text.length - this.at < 4) return -1;
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = <i32>this.text[this.at++];
      v <<= 4;
      if (c >= 0x30 && c <= 0x39) v |= c - 0x30;
      else if (c >= 0x61 && c <= 0x66) v |= c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) v |= c - 0x41 + 10;
      else return -1;
    }
    return v;
  }
  // A JSON string at `at` (its opening quote) as UTF-8 bytes, or null (and `error`).
  string(): ArrayBuffer | null {
    if (!this.more() || this.peek() != 0x22) {
      this.fail("expected a string");
      return null;
    }
    this.at++;
    const out = new Uint8Array(this.text.length - this.at);
    let n = 0;
    while (this.more() && this.peek() != 0x22) {
      const c = this.text[this.at++];
      if (c < 0x20) {
        this.fail("a control character in a string");
        return null;
      }
      if (c != 0x5c) {
        out[n++] = c;
        continue;
      }
      if (!this.more()) break;
      const e = this.text[this.at++];
      if (e == 0x22 || e == 0x5c || e == 0x2f) out[n++] = e;
      else if (e == 0x62) out[n++] = 0x08;
      else if (e == 0x66) out[n++] = 0x0c;
      else if (e == 0x6e) out[n++] = 0x0a;
      else if (e == 0x72) out[n++] = 0x0d;
      else if (e == 0x74) out[n++] = 0x09;
      else if (e == 0x75) {
        let u = this.hex4();
        if (u < 0) {
          this.fail("a \\u escape needs 4 hex digits");
          return null;
        }
        if (u >= 0xd800 && u < 0xdc00) {
          if (this.text.length - this.at < 6 || this.text[this.at] != 0x5c || this.text[this.at + 1] != 0x75) {
            this.fail("a lone surrogate");
            return null;
          }
          this.at += 2;
          const low = this.hex4();
          if (low < 0xdc00 || low > 0xdfff) {
            this.fail("a lone surrogate");
            return null;
          }
          u = 0x10000 + ((u - 0xd800) << 10) + (low - 0xdc00);
        } else if (u >= 0xdc00 && u < 0xe000) {
          this.fail("a lone surrogate");
          return null;
        }
        if (u < 0x80) {
          out[n++] = <u8>u;
        } else if (u < 0x800) {
          out[n++] = <u8>(0xc0 | (u >> 6));
          out[n++] = <u8>(0x80 | (u & 0x3f));
        } else if (u < 0x10000) {
          out[n++] = <u8>(0xe0 | (u >> 12));
          out[n++] = <u8>(0x80 | ((u >> 6) & 0x3f));
          out[n++] = <u8>(0x80 | (u & 0x3f));
        } else {
          out[n++] = <u8>(0xf0 | (u >> 18));
          out[n++] = <u8>(0x80 | ((u >> 12) & 0x3f));
          out[n++] = <u8>(0x80 | ((u >> 6) & 0x3f));
          out[n++] = <u8>(0x80 | (u & 0x3f));
        }
      } else {
        this.fail("an unknown escape in a string");
        return null;
      }
    }
    if (!this.more()) {
      this.fail("an unterminated string");
      return null;
    }
    this.at++;
    return out.slice(0, n).buffer;
  }
}

// The configuration in `text`, or null with the reason in `error[0]`.
export function parseConfig(text: ArrayBuffer, error: string[]): Config | null {
  const p = new Parser(Uint8Array.wrap(text));
  const values = new Array<ArrayBuffer | null>(KEYS.length);
  let ok = parseObject(p, values);
  const config = new Config();
  for (let i = 0; ok && i < KEYS.length; i++) {
    const value = values[i];
    if (value === null) {
      ok = p.fail("missing key `" + KEYS[i] + "` (a string)");
    } else {
      config.values.push(value);
    }
  }
  if (!ok) {
    error[0] = p.error;
    return null;
  }
  return config;
}

function parseObject(p: Parser, values: Array<ArrayBuffer | null>): bool {
  p.skipSpace();
  if (!p.more() || p.peek() != 0x7b) return p.fail("the configuration must be a JSON object");
  p.at++;
  p.skipSpace();
  let first = true;
  while (p.more() && p.peek() != 0x7d) {
    if (!first) {
      if (p.peek() != 0x2c) return p.fail("expected , or } in the object");
      p.at++;
      p.skipSpace();
    }
    first = false;
    const keyBytes = p.string();
    if (keyBytes === null) return false;
    const key = String.UTF8.decode(keyBytes);
    const index = KEYS.indexOf(key);
    if (index < 0) {
      return p.fail("unknown key `" + key + "` (known: tag, deny_path, callout_cluster, callout_path, callout_header)");
    }
    if (values[index] !== null) return p.fail("`" + key + "` appears twice");
    p.skipSpace();
    if (!p.more() || p.peek() != 0x3a) return p.fail("expected : after a key");
    p.at++;
    p.skipSpace();
    if (!p.more() || p.peek() != 0x22) return p.fail("`" + key + "` must be a string");
    const value = p.string();
    if (value === null) return false;
    values[index] = value;
    p.skipSpace();
  }
  if (!p.more()) return p.fail("the object is not closed");
  p.at++;
  p.skipSpace();
  if (p.more()) return p.fail("text after the JSON object");
  return true;
}
