/**
 * The pruner's flag rules, in-process: every accepted age form and the
 * chunk size. (The process-level refusals are in pruner.test.ts.)
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAge, resolvePruneOptions } from '../../src/pruner/options';
import { UsageError } from '../../src/core/errors';

describe('--older-than accepts ISO 8601 durations and short forms', () => {
  const cases: Array<[string, Record<string, number>]> = [
    ['P30D', { days: 30 }],
    ['p30d', { days: 30 }],
    ['PT12H', { hours: 12 }],
    ['P1M', { months: 1 }],
    ['P1Y2M', { years: 1, months: 2 }],
    ['P2W', { weeks: 2 }],
    ['30d', { days: 30 }],
    ['12h', { hours: 12 }],
    ['90m', { minutes: 90 }],
    ['45s', { seconds: 45 }],
    ['2w', { weeks: 2 }],
    [' 7D ', { days: 7 }],
  ];
  for (const [text, expected] of cases) {
    test(`"${text}"`, () => {
      assert.deepEqual(parseAge(text).toObject(), expected);
    });
  }
  for (const bad of ['', '30', 'd', '30x', 'P', 'PT0S', '0d', '-3d', 'thirty days', 'P30D junk']) {
    test(`"${bad}" is refused`, () => {
      assert.throws(() => parseAge(bad), UsageError);
    });
  }
});

describe('the chunk size', () => {
  test('defaults to 100 and is --interval in every mode', () => {
    assert.equal(resolvePruneOptions({ keep: '3' }).chunk, 100);
    assert.equal(resolvePruneOptions({ keep: '3', interval: '5000' }).chunk, 5000);
    assert.equal(resolvePruneOptions({ olderThan: '1d', interval: '7' }).chunk, 7);
    assert.equal(resolvePruneOptions({ first: '1', last: '2', interval: '1' }).chunk, 1);
  });
  test('is at most 100000', () => {
    assert.throws(
      () => resolvePruneOptions({ keep: '3', interval: '100001' }),
      /--interval must be at most 100000/,
    );
  });
  test('--first equal to --last deletes one id', () => {
    assert.deepEqual(resolvePruneOptions({ first: '7', last: '7' }).mode, {
      kind: 'range',
      first: 7,
      last: 7,
    });
  });
});
