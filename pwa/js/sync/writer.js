// Writing concerns from a browser device, the twin of sync/writer.py: a `created` event, encoded by events.js
// (canonical and checked) and sealed into the device's outbox by `Device.write`. Recipients follow docs/ARCHITECTURE.md's
// rule from the record's category: a restricted category goes to the safeguarding group only; any other also
// to each linked pupil's key and to the groups the category names (SEN categories name `sen`).
//
// A contributor's device is write-only: the entry key is made for this one concern, used to seal, and wiped.
// Nothing this writer returns could open the envelope again.

import { VERSION, encode } from '../events.js';
import { nextHlc } from '../hlc.js';
import { validateRecord } from '../record.js';
import { hex, unhex } from './protocol.js';

/** @typedef {import('./device.js').Device} Device */
/** @typedef {import('./outbox.js').Outbox} Outbox */
/**
 * One of the school's categories (sync/data/categories.json, docs/PROTOCOL.md 8.3.1).
 * @typedef {{id: string, label: string, group: string, sensitivity: string, readers: string[],
 *   off_chronology: boolean, dfe_code: string | null}} Category
 */
/** @typedef {{concernId: string, eventId: string, hlc: [number, number]}} Written */

export class ConcernWriter {
  /**
   * @param {Device} device
   * @param {Outbox} outbox
   * @param {Category[]} categories
   */
  constructor(device, outbox, categories) {
    this.device = device;
    this.outbox = outbox;
    this.categories = new Map(categories.map((c) => [c.id, c]));
  }

  /**
   * Check `record` against the school's categories, then seal its `created` event into the outbox.
   * @param {Record<string, any>} record
   * @returns {Promise<Written>}
   */
  async create(record) {
    validateRecord(record, this.categories.keys());
    const category = /** @type {Category} */ (this.categories.get(record.category));
    const author = hex(this.device.userId);
    /** @type {[number, number]} */
    let hlc = [0, 0];
    const concernId = globalThis.crypto.getRandomValues(new Uint8Array(16));
    const pupilIds = (record.pupils ?? []).map((/** @type {{pupil: string}} */ p) => unhex(p.pupil));
    const eventId = await this.device.write(this.outbox, (chain) => {
      const reading = nextHlc(chain.lastHlc, Date.now());
      hlc = [reading[0], reading[1]];
      const content = encode({
        v: VERSION, type: 'created', hlc, author, parents: [], record, entry_key_version: 1,
      });
      return { content, hlc };
    }, {
      concernId, pupilIds, restricted: category.sensitivity === 'restricted',
      groups: category.readers.map((g) => `group:${g}`),
    });
    return { concernId: hex(concernId), eventId, hlc };
  }
}
