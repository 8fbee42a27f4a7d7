// Writes the app's PNG icons (pwa/icons/icon-192.png, icon-512.png, icon-maskable-512.png): the same cairn of
// stones as icon.svg, rasterised here with zlib so that no image tool is needed. Run: node scripts/icons.mjs
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'icons');
const TEAL = [0x24, 0x50, 0x5c];
const STONE = [0xf6, 0xf4, 0xef];
// [cx, cy, rx, ry] on a 512 grid, as in icon.svg
const STONES = [[256, 392, 150, 50], [256, 300, 112, 42], [256, 218, 78, 34], [256, 150, 46, 26]];

const CRC = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
/** @param {Buffer} buf */
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
/** @param {string} type @param {Buffer} data */
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** @param {number} size @param {boolean} maskable */
function icon(size, maskable) {
  const scale = 512 / size;
  const shrink = maskable ? 0.72 : 1; // maskable icons keep their drawing inside the safe circle
  const radius = maskable ? 0 : 96;
  const rows = [];
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 4);
    for (let x = 0; x < size; x++) {
      let cover = 0;
      let inside = 0;
      for (const [sx, sy] of [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]) {
        const px = (x + sx) * scale;
        const py = (y + sy) * scale;
        const dx = Math.max(radius - px, px - (512 - radius), 0);
        const dy = Math.max(radius - py, py - (512 - radius), 0);
        if (dx * dx + dy * dy <= radius * radius) inside += 1;
        const gx = 256 + (px - 256) / shrink;
        const gy = 256 + (py - 256) / shrink;
        if (STONES.some(([cx, cy, rx, ry]) => ((gx - cx) / rx) ** 2 + ((gy - cy) / ry) ** 2 <= 1)) cover += 1;
      }
      const c = TEAL.map((t, i) => Math.round(t + ((STONE[i] - t) * cover) / 4));
      row.set([...c, Math.round((255 * inside) / 4)], 1 + x * 4);
    }
    rows.push(row);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows), { level: 9 })), chunk('IEND', Buffer.alloc(0)),
  ]);
}

writeFileSync(join(out, 'icon-192.png'), icon(192, false));
writeFileSync(join(out, 'icon-512.png'), icon(512, false));
writeFileSync(join(out, 'icon-maskable-512.png'), icon(512, true));
