/**
 * Which lines of an output tail came from stderr (src/runner/output-tail.ts,
 * src/core/output-lines.ts): numbered from the end, so any cut of the tail
 * at the front keeps them right; checked for any interleaving of the two
 * streams and any tail size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OutputTail } from '../../src/runner/output-tail';
import {
  encodeLineRanges,
  isLineRanges,
  lineRangesTest,
  splitLines,
  STDERR_LINES_MAX_CHARS,
} from '../../src/core/output-lines';

test('the ranges text round-trips any set of line numbers, and stays bounded', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 5000 }), { maxLength: 300 }), (ns) => {
      const text = encodeLineRanges(ns);
      assert.ok(text.length <= STDERR_LINES_MAX_CHARS);
      if (ns.length === 0) return assert.equal(text, '');
      assert.ok(isLineRanges(text), text);
      const has = lineRangesTest(text);
      for (const n of ns) assert.ok(has(n), `${n} in ${text}`);
      for (let n = 1; n <= 5000; n += 97) assert.equal(has(n), ns.includes(n), `${n} vs ${text}`);
    }),
  );
  assert.equal(encodeLineRanges([3, 1, 2, 7, 9, 8]), '1-3,7-9');
  assert.equal(isLineRanges('1-3,x'), false);
  assert.equal(isLineRanges('0'), false);
  assert.equal(lineRangesTest('garbage')(1), false);
});

test('OutputTail marks exactly the stderr lines of its tail, for any interleaving and tail size', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          err: fc.boolean(),
          text: fc.stringMatching(/^[a-z é]{0,30}$/),
        }),
        { minLength: 1, maxLength: 60 },
      ),
      fc.integer({ min: 16, max: 2048 }),
      (lines, limit) => {
        const tail = new OutputTail(limit);
        for (const l of lines) tail.push(Buffer.from(`${l.text}\n`), l.err ? 'err' : 'out');
        const shown = splitLines(tail.text());
        const { ranges, lastLine } = tail.stderrLines();
        const has = lineRangesTest(ranges);
        // The shown lines are the last ones written (the first may be cut short).
        for (let k = 1; k <= shown.length; k++) {
          const written = lines[lines.length - k]!;
          assert.equal(has(k), written.err, `line ${k} from the end: ${JSON.stringify(written)}`);
        }
        // stderr's last non-empty line as the tail shows it (the first may be cut short).
        const first = lines.length - shown.length;
        const lastErr = shown.findLast((text, i) => lines[first + i]!.err && text.trim() !== '');
        assert.equal(lastLine, lastErr === undefined ? null : lastErr.trim());
      },
    ),
  );
});

test('a failed run says what stderr said last; stdout after it does not change that', () => {
  const tail = new OutputTail(1000);
  tail.push(Buffer.from('starting\n'), 'out');
  tail.push(Buffer.from('fatal: no such table\n'), 'err');
  tail.push(Buffer.from('cleanup done\n\n'), 'out');
  assert.deepEqual(tail.stderrLines(), { ranges: '3', lastLine: 'fatal: no such table' });
  const quiet = new OutputTail(1000);
  quiet.push(Buffer.from('only stdout\n'), 'out');
  assert.deepEqual(quiet.stderrLines(), { ranges: '', lastLine: null });
});
