import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseOutboxItems, type OutboxItem } from '../../src/results/notify/outbox';
import { marksText, parseMarks } from '../../src/results/notify/record';

/**
 * What the notification outbox and a job's notify_marks hold is read back
 * as any stored text is (docs/notifications.md): what is malformed is
 * dropped and counted, never a reason to stop.
 */

const item = (over: Partial<OutboxItem> = {}): OutboxItem => ({
  job_id: 7,
  job_name: 'backup',
  category: 'nightly',
  run_id: 'ab'.repeat(16),
  event: 'failed',
  failures: 1,
  target_key: '0123456789abcdef',
  target: { on: ['failed'], webhook: 'https://example.com/h' },
  ...over,
});

describe('outbox items', () => {
  test('well-formed items come back as written', () => {
    const items = [item(), item({ run_id: null, event: 'overdue', job_name: null })];
    assert.deepEqual(parseOutboxItems(JSON.stringify(items)), { items, bad: 0 });
  });

  test('malformed items are dropped and counted; the others are kept', () => {
    const bad = [
      item({ job_id: 1.5 }),
      item({ event: 'exploded' as never }),
      item({ run_id: "'; DROP TABLE jobs; --" }),
      item({ target_key: 'x'.repeat(17) }),
      item({ target: [] as never }),
      item({ job_name: 'n'.repeat(256) }),
      null,
      'text',
    ];
    // Too deep to write back as JSON: dropped as the others, not a failed move.
    const deep = '{"a":'.repeat(200_000) + '1' + '}'.repeat(200_000);
    const text = JSON.stringify([item(), ...bad, item({ job_id: 8 })]);
    const withDeep = text.replace(
      '[',
      `[{"job_id":9,"job_name":null,"category":null,"run_id":null,"event":"failed","failures":1,"target_key":"k","target":${deep}},`,
    );
    const got = parseOutboxItems(withDeep);
    assert.equal(got.bad, bad.length + 1);
    assert.deepEqual(
      got.items.map((i) => i.job_id),
      [7, 8],
    );
  });

  test('text that is not a JSON array is one bad row, for any input', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const got = parseOutboxItems(s);
        if (!s.trim().startsWith('[')) assert.deepEqual(got, { items: [], bad: 1 });
      }),
    );
  });
});

describe('notify marks', () => {
  test('round-trip: what is written is read back', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.stringMatching(/^[0-9a-f]{16}$/), fc.integer({ min: 0, max: 2 ** 45 })),
        (doc) => {
          const marks = new Map(Object.entries(doc).map(([k, at]) => [k, { lastAt: at, held: 0 }]));
          const text = marksText(marks);
          assert.deepEqual(parseMarks(text), marks);
          if (marks.size === 0) assert.equal(text, null);
        },
      ),
    );
  });

  test('unreadable marks are no marks (at worst one notification more), never an error', () => {
    for (const text of ['', 'nope', '[1,2]', '{"a":"soon"}', '{"a":null}', 'null'])
      assert.equal(parseMarks(text).size, 0, text);
    assert.deepEqual([...parseMarks('{"a":5,"b":"x"}').keys()], ['a']);
  });
});
