// Canonical bytes (docs/PROTOCOL.md section 1): the single Writer and Reader.
//
// Integers are big-endian. u64 values are JavaScript numbers and must be safe integers (< 2^53);
// the Reader refuses a larger u64 as Malformed rather than silently losing precision. Nothing else
// in the crypto layer builds or parses bytes by hand.

import { Malformed } from './errors.js';

export const ID_BYTES = 16;
const U32_MAX = 0xffffffff;

/**
 * @param {unknown} value
 * @param {number} max
 * @param {string} name
 * @returns {number}
 */
function checkUint(value, max, name) {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new TypeError(`${name} must be an integer from 0 to ${max}, got ${String(value)}.`);
  }
  return value;
}

/**
 * Check that `value` is a Uint8Array of exactly `n` bytes (a programmer error otherwise).
 * @param {unknown} value
 * @param {number} n
 * @param {string} name
 * @returns {Uint8Array}
 */
export function checkBytes(value, n, name) {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${name} must be a Uint8Array of ${n} bytes.`);
  }
  if (value.length !== n) {
    throw new TypeError(`${name} must be exactly ${n} bytes, got ${value.length}.`);
  }
  return value;
}

/** Builds canonical bytes. */
export class Writer {
  constructor() {
    /** @type {Uint8Array[]} */
    this.parts = [];
    this.length = 0;
  }

  /** @param {Uint8Array} b */
  push(b) {
    this.parts.push(b);
    this.length += b.length;
    return this;
  }

  /** @param {number} n */
  u8(n) {
    return this.push(Uint8Array.of(checkUint(n, 0xff, 'a u8 value')));
  }

  /** @param {number} n */
  u32(n) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, checkUint(n, U32_MAX, 'a u32 value'), false);
    return this.push(b);
  }

  /** @param {number} n a safe integer (< 2^53) */
  u64(n) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(checkUint(n, Number.MAX_SAFE_INTEGER, 'a u64 value')), false);
    return this.push(b);
  }

  /**
   * Fixed-length raw bytes; `n`, when given, is checked.
   * @param {Uint8Array} b
   * @param {number} [n]
   * @param {string} [name]
   */
  bytes(b, n, name = 'a byte string') {
    if (n !== undefined) checkBytes(b, n, name);
    else if (!(b instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array.`);
    return this.push(Uint8Array.from(b));
  }

  /**
   * A 16-byte id.
   * @param {Uint8Array} b
   * @param {string} [name]
   */
  id(b, name = 'an id') {
    return this.bytes(b, ID_BYTES, name);
  }

  /** @returns {Uint8Array} */
  finish() {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/**
 * Compare byte strings in ascending byte order (a shorter prefix first): the canonical order of every
 * sorted list.
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {number}
 */
export function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * Concatenate byte strings.
 * @param {...Uint8Array} parts
 * @returns {Uint8Array}
 */
export function concat(...parts) {
  const w = new Writer();
  for (const p of parts) w.bytes(p);
  return w.finish();
}

/** Parses canonical bytes; refuses short input and (at `done`) trailing bytes with Malformed. */
export class Reader {
  /**
   * @param {Uint8Array} bytes
   * @param {string} what the step, for messages: "parsing envelope"
   */
  constructor(bytes, what) {
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError(`${what}: input must be a Uint8Array.`);
    }
    // A plain view, so that `slice` copies even when the caller passes a Node Buffer.
    this.buf = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.what = what;
    this.pos = 0;
  }

  /** Bytes not read yet. */
  get remaining() {
    return this.buf.length - this.pos;
  }

  /**
   * @param {number} n
   * @param {string} field
   */
  need(n, field) {
    if (this.remaining < n) {
      throw new Malformed(`${this.what}: input ends inside ${field}`);
    }
  }

  /** @param {string} [field] */
  u8(field = 'a u8') {
    this.need(1, field);
    return this.buf[this.pos++];
  }

  /** @param {string} [field] */
  u32(field = 'a u32') {
    this.need(4, field);
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getUint32(0, false);
    this.pos += 4;
    return v;
  }

  /** @param {string} [field] */
  u64(field = 'a u64') {
    this.need(8, field);
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getBigUint64(0, false);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new Malformed(`${this.what}: ${field} is larger than this implementation supports (2^53 - 1)`);
    }
    return Number(v);
  }

  /**
   * Exactly `n` raw bytes (a copy).
   * @param {number} n
   * @param {string} [field]
   */
  bytes(n, field = 'a byte string') {
    this.need(n, field);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /**
   * A copy of the bytes from `start` to `end`, whether read yet or not.
   * @param {number} start
   * @param {number} end
   */
  slice(start, end) {
    return this.buf.slice(start, end);
  }

  /** @param {string} [field] */
  id(field = 'an id') {
    return this.bytes(ID_BYTES, field);
  }

  /** Refuse trailing bytes. */
  done() {
    if (this.remaining !== 0) {
      throw new Malformed(`${this.what}: ${this.remaining} trailing bytes`);
    }
  }
}
