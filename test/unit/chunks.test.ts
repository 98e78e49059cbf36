import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { chunkBy } from '../../src/core/chunks';

/** src/core/chunks.ts: what one statement or row carries, by count and by size. */
test('chunks keep every item in order, within both limits, and start a new one only when the next would not fit', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 50 })),
      fc.integer({ min: 1, max: 10 }),
      fc.integer({ min: 1, max: 100 }),
      (sizes, maxCount, maxSize) => {
        const chunks = chunkBy(sizes, maxCount, maxSize, (s) => s);
        assert.deepEqual(chunks.flat(), sizes);
        const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
        for (const [i, c] of chunks.entries()) {
          assert.ok(c.length >= 1 && c.length <= maxCount);
          if (c.length > 1) assert.ok(sum(c) <= maxSize, `${c} over ${maxSize}`);
          const next = chunks[i + 1];
          if (next) assert.ok(c.length === maxCount || sum(c) + next[0]! > maxSize, 'greedy');
        }
      },
    ),
  );
});
