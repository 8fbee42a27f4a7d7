// The pupil file vectors (tests/vectors/mis/, docs/PROTOCOL.md 11.1), which the Python reader (sync/mis.py)
// writes: the browser's reader (js/mis.js) gives each one's pupils, problems or file code. In Node, XML is read
// by @xmldom/xmldom where the browser has DOMParser.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { DOMParser } from '@xmldom/xmldom';

import { FILE_CODES, MisFileError, PROBLEMS, readFile } from '../js/mis.js';

const FOLDER = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests', 'vectors', 'mis');
const FILES = readdirSync(FOLDER).filter((f) => f.endsWith('.json')).sort();

/** xmldom as the browser's parser: any error or fatal error is a file that is not well formed. @param {string} text */
function xml(text) {
  const parser = new DOMParser({
    onError: (level, message) => {
      if (level !== 'warning') throw new MisFileError('bad_xml', String(message));
    },
  });
  try {
    return /** @type {Document} */ (/** @type {unknown} */ (parser.parseFromString(text, 'text/xml')));
  } catch (error) {
    if (error instanceof MisFileError) throw error;
    throw new MisFileError('bad_xml', error instanceof Error ? error.message : '');
  }
}

/** @param {string} hex */
const bytes = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));

test('there are vectors of each format and outcome', () => {
  const kinds = new Set(FILES.map((f) => {
    const v = JSON.parse(readFileSync(join(FOLDER, f), 'utf8'));
    return `${v.area} ${v.expect}`;
  }));
  assert.deepEqual([...kinds].sort(), ['csv parse_failure', 'csv success', 'ctf parse_failure', 'ctf success']);
});

for (const name of FILES) {
  test(`mis/${name}`, () => {
    const v = JSON.parse(readFileSync(join(FOLDER, name), 'utf8'));
    const { file, today, columns } = v.inputs;
    let read;
    try {
      read = readFile(bytes(file), { today, xml, ...(columns ? { columns } : {}) });
    } catch (error) {
      if (!(error instanceof MisFileError)) throw error;
      assert.ok(FILE_CODES.includes(error.code));
      assert.deepEqual(v.output, { file_code: error.code });
      return;
    }
    if (read.problems.length) {
      assert.ok(read.problems.every((p) => PROBLEMS.includes(p.code)) && read.pupils.length === 0);
      assert.deepEqual(v.output, { problems: read.problems.map((p) => [p.line, p.column, p.code]) });
      return;
    }
    assert.deepEqual(v.output, { format: read.format, pupils: read.pupils, columns: read.columns, ignored: read.ignored });
  });
}

test('any bytes give pupils, problems or a file code, and nothing else', () => {
  const parts = ['UPN', 'Surname', 'Forename', 'DOB', 'Year', ',', '\r\n', '"', '<', 'A201', '12/09/2019', 'R', '\t',
    'CTfile', '>', '</', '<CTFpupilData>', '<Pupil>', '\u00e9', '\uffff'];
  let seed = 7;
  const next = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed; };
  for (let n = 0; n < 400; n += 1) {
    const text = Array.from({ length: next() % 40 }, () => parts[next() % parts.length]).join('');
    const data = n % 3 === 0 ? Uint8Array.from({ length: next() % 60 }, () => next() % 256) : new TextEncoder().encode(text);
    try {
      const read = readFile(data, { today: '2026-12-04', xml });
      assert.ok(read.problems.every((p) => PROBLEMS.includes(p.code)));
      assert.ok(read.problems.length === 0 || read.pupils.length === 0);
    } catch (error) {
      assert.ok(error instanceof MisFileError && FILE_CODES.includes(error.code), `${error}: ${JSON.stringify(text)}`);
    }
  }
});
