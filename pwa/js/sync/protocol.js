// The sync protocol's limits and encodings on the JavaScript side: the twin of the parts of sync/protocol.py a
// device needs (docs/PROTOCOL.md section 9). Byte strings travel as unpadded base64url; every frame is one
// JSON object with a `type`.

export const PROTOCOL_VERSION = 1;

export const LIMITS = Object.freeze({
  max_frame_bytes: 4 * 1024 * 1024,
  max_envelope_bytes: 1_050_000,
  max_put_envelopes: 256,
  max_pull_limit: 500,
  max_backfill_keys: 64,
  max_page_bytes: 3 * 1024 * 1024,
  max_request_id_chars: 64,
  keepalive_seconds: 20,
  auth_timeout_seconds: 10,
});

/** Codes after which the same batch may be sent again unchanged. */
export const RETRYABLE = Object.freeze(new Set(['internal_error', 'rate_limited']));

/**
 * Unpadded base64url of `bytes`.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function b64e(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Decode unpadded base64url; a malformed string throws a TypeError naming `what`.
 * @param {string} text
 * @param {string} what
 * @returns {Uint8Array}
 */
export function b64d(text, what) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new TypeError(`${what} is not unpadded base64url.`);
  }
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * Lower-case hex of `bytes` (ids in event content, and keys of local stores).
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function hex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/**
 * @param {string} text even-length lower- or upper-case hex
 * @returns {Uint8Array}
 */
export function unhex(text) {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) throw new TypeError('not a hex string.');
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * One frame's text: compact JSON, as `sync.protocol.frame` writes it.
 * @param {Record<string, unknown>} body
 * @returns {string}
 */
export function frame(body) {
  return JSON.stringify(body);
}

/**
 * Parse a frame from the server: a JSON object with a string `type`, or a TypeError.
 * @param {string} text
 * @returns {Record<string, any> & {type: string}}
 */
export function parseServer(text) {
  const body = JSON.parse(text);
  if (body === null || typeof body !== 'object' || Array.isArray(body) || typeof body.type !== 'string') {
    throw new TypeError('the server sent a frame that is not an object with a type');
  }
  return body;
}
