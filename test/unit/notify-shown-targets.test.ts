import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseNotifyTargets } from '../../src/core/notify/targets';
import {
  parseShownTargets,
  shownTargets,
  shownTargetsText,
} from '../../src/core/notify/shown-targets';

const targets = parseNotifyTargets([
  {
    webhook: 'https://hooks.example.com/services/T0/B0/SECRET?token=QS',
    format: 'slack',
    on: ['failed'],
  },
  { email: ['ops@example.com'], repeat_after: 'PT4H' },
]).targets;

describe('the targets for every job, as stored for the job page', () => {
  test('a webhook is stored by its origin only, never its path or query', () => {
    const text = shownTargetsText(targets);
    assert.doesNotMatch(text, /SECRET|services|token|QS/);
    assert.deepEqual(shownTargets(targets), [
      {
        label: 'webhook https://hooks.example.com/…',
        on: ['failed'],
        format: 'slack',
        repeat_after_ms: 3_600_000,
      },
      {
        label: 'e-mail ops@example.com',
        on: ['failed', 'timed_out', 'lost', 'missed', 'overdue', 'recovered'],
        format: null,
        repeat_after_ms: 14_400_000,
      },
    ]);
  });

  test('the same targets store the same text; none store an empty list', () => {
    assert.equal(shownTargetsText(targets), shownTargetsText([...targets]));
    assert.equal(shownTargetsText([]), '[]');
  });

  test('what is stored reads back as it was', () => {
    assert.deepEqual(parseShownTargets(shownTargetsText(targets)), shownTargets(targets));
  });

  test('anything else reads back bounded: at most 10 targets, known events, short labels, sane numbers', () => {
    for (const bad of ['', 'null', '{}', '"x"', '[1, null, "a", {"label": 3}, {"label": ""}]', '{'])
      assert.deepEqual(parseShownTargets(bad), [], bad);
    const many = JSON.stringify(
      Array.from({ length: 50 }, () => ({
        label: 'x'.repeat(10_000),
        on: ['failed', 'nope', 7],
        format: 'html',
        repeat_after_ms: -5,
      })),
    );
    const read = parseShownTargets(many);
    assert.equal(read.length, 10);
    assert.ok(read.every((t) => t.label.length <= 2_600));
    assert.deepEqual(read[0]!.on, ['failed']);
    assert.equal(read[0]!.format, null);
    assert.equal(read[0]!.repeat_after_ms, 0);
    fc.assert(
      fc.property(fc.json(), (text) => {
        const r = parseShownTargets(text);
        assert.ok(r.length <= 10);
        for (const t of r) assert.equal(typeof t.label, 'string');
      }),
    );
  });
});
