// Hybrid logical clocks as pure functions over [wallMs, counter] pairs: the twin of sync/hlc.py.
//
// A new event's reading is strictly greater than its device's previous reading and than every event it
// names as a parent, whatever the device's own clock says, so causal order implies HLC order even when
// clocks are wrong by a year. The total order of events is (wallMs, counter, device, event id).
// docs/PROTOCOL.md section 8.2.

import { ClockSkew } from './record.js';

/** @typedef {readonly [number, number]} Hlc  [wall clock in Unix ms, counter] */

export const MAX_WALL_MS = 2 ** 48 - 1;
export const MAX_COUNTER = 2 ** 32 - 1;
/** Two years: any two devices each up to a year fast or slow still work together. */
export const MAX_SKEW_MS = 2 * 366 * 24 * 3600 * 1000;

/**
 * Compare two readings: negative, zero or positive.
 * @param {Hlc} a @param {Hlc} b
 */
export function compareHlc(a, b) {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}

/**
 * The reading for a new event: greater than `last` (this device's previous reading) and every `seen`.
 * `seen` holds the readings of the events the new event names as parents. One more than MAX_SKEW_MS ahead of
 * `nowMs` throws ClockSkew; the caller then leaves that event out of the parents (the edit shows as
 * concurrent, so nothing is lost) and asks a person to check the clocks.
 * @param {Hlc | null} last
 * @param {number} nowMs
 * @param {Iterable<Hlc>} [seen]
 * @returns {Hlc}
 */
export function nextHlc(last, nowMs, seen = []) {
  if (!Number.isInteger(nowMs) || nowMs < 0 || nowMs > MAX_WALL_MS) {
    throw new RangeError(`nowMs must be an integer from 0 to ${MAX_WALL_MS}, not ${nowMs}.`);
  }
  let top = last;
  for (const h of seen) {
    if (h[0] > nowMs + MAX_SKEW_MS) {
      throw new ClockSkew(`choosing a clock reading: a parent is ${h[0] - nowMs} ms ahead of this device`);
    }
    if (top === null || compareHlc(h, top) > 0) top = h;
  }
  if (top === null || nowMs > top[0]) return [nowMs, 0];
  if (top[1] < MAX_COUNTER) return [top[0], top[1] + 1];
  if (top[0] < MAX_WALL_MS) return [top[0] + 1, 0];
  throw new ClockSkew('choosing a clock reading: the clock is exhausted');
}

/**
 * The total order of events: HLC, then device id, then event id (ids as lower-case hex).
 * @param {{hlc: Hlc, device: string, id: string}} a
 * @param {{hlc: Hlc, device: string, id: string}} b
 */
export function compareEvents(a, b) {
  const c = compareHlc(a.hlc, b.hlc);
  if (c !== 0) return c;
  if (a.device !== b.device) return a.device < b.device ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
