import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { jobLogFileName } from '../../src/runner/job-log-name';

/** Names built from the characters that used to collide, plus any Unicode (lone surrogates too). */
const names = fc.oneof(
  fc.string({
    unit: fc.constantFrom(
      'a',
      'B',
      '1',
      '_',
      '-',
      ' ',
      '/',
      '.',
      '\0',
      'é',
      '日',
      '\u{1D518}',
      '\uD800',
      '\uDC00',
    ),
    maxLength: 300,
  }),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'grapheme', minLength: 200, maxLength: 400 }),
  fc.stringMatching(/^[A-Za-z0-9_]{1,250}([ -][A-Za-z0-9_]{1,30}){0,3}$/),
);

function assertSafe(file: string): void {
  assert.ok(Buffer.byteLength(file) <= 255 - 2, `${file}: too long with a rotation suffix`);
  assert.ok(!file.includes('/') && !file.includes('\0'), file);
  assert.ok(file !== '.' && file !== '..', file);
  assert.ok(!file.startsWith('-') && !file.startsWith('.'), file);
  assert.ok(file.endsWith('.log'), file);
  assert.match(file, /^[\x21-\x7e]+$/, 'printable ASCII only');
}

describe('jobLogFileName', () => {
  test('every file name is safe and bounded, for any name', () => {
    fc.assert(
      fc.property(names, (n) => assertSafe(jobLogFileName(n))),
      { numRuns: 2000 },
    );
  });

  test('two distinct names never share a file', () => {
    fc.assert(
      fc.property(names, names, (a, b) => {
        fc.pre(a !== b);
        assert.notEqual(
          jobLogFileName(a),
          jobLogFileName(b),
          `${JSON.stringify(a)} vs ${JSON.stringify(b)}`,
        );
      }),
      { numRuns: 5000 },
    );
  });

  test("the names that used to collide or fail, each apart; words separated by spaces keep SPEC.md's name", () => {
    const cases = [
      'a/b',
      'a b',
      'a-b',
      'a--b',
      '-',
      '..',
      '.',
      '',
      'job',
      'job-',
      '日本語',
      '中文',
      'x'.repeat(255),
      'x'.repeat(300),
      '\u{1D518}'.repeat(255),
      '\u{1D518}'.repeat(254),
      'a\0b',
    ];
    const files = cases.map(jobLogFileName);
    assert.equal(new Set(files).size, cases.length, files.join(' '));
    files.forEach(assertSafe);
    assert.equal(jobLogFileName('a b'), 'a-b.log');
    assert.equal(jobLogFileName('Nightly report 2'), 'Nightly-report-2.log');
    assert.equal(jobLogFileName('nightly_backup'), 'nightly_backup.log');
    assert.match(jobLogFileName('a-b'), /^a-b--[0-9a-f]{16}\.log$/);
    assert.match(jobLogFileName('a  b'), /^a-b--[0-9a-f]{16}\.log$/);
    assert.match(jobLogFileName('..'), /^job--[0-9a-f]{16}\.log$/);
  });
});
