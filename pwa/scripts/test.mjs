// Runs every pwa/test/**/*.test.mjs with Node's test runner and ends with one line
// "node: N passed, N failed". Exits non-zero when any test fails or when no test ran at all,
// so an empty or mis-globbed suite can never pass.
import { readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

const testDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'test');
const files = readdirSync(testDir, { recursive: true })
  .map(String)
  .filter((name) => name.endsWith('.test.mjs'))
  .sort()
  .map((name) => join(testDir, name));

let passed = 0;
let failed = 0;
const stream = run({ files, concurrency: true });
stream.on('test:pass', (event) => {
  if (event.details?.type !== 'suite' && !event.skip && !event.todo) passed += 1;
});
stream.on('test:fail', (event) => {
  if (event.details?.type !== 'suite') failed += 1;
});
const report = stream.compose(spec);
report.pipe(process.stdout, { end: false });
report.on('end', () => {
  process.stdout.write(`node: ${passed} passed, ${failed} failed\n`);
  if (failed > 0 || passed === 0) process.exitCode = 1;
});
