/**
 * Every schedule shown as an example in README.md and docs/web.md must be
 * one the real parser accepts: a person copies them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isValidSchedule } from '../../src/core/schedule';

const ROOT = path.resolve(__dirname, '..', '..');

function scheduleExamples(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  return [...text.matchAll(/"schedule"\s*:\s*"((?:[^"\\]|\\.)*)"/g)].map(
    (m) => JSON.parse(`"${m[1]}"`) as string,
  );
}

for (const file of ['README.md', 'docs/web.md']) {
  test(`every schedule example in ${file} validates`, () => {
    const examples = scheduleExamples(file);
    assert.ok(examples.length > 0, `${file} has schedule examples`);
    const bad = examples
      .map((s) => [s, isValidSchedule(s)] as const)
      .filter(([, problem]) => problem !== null);
    assert.deepEqual(bad, [], `${file}: examples the parser refuses`);
  });
}
