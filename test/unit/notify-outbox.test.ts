import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  OUTBOX_ITEMS_PER_ROW,
  OUTBOX_ROW_BYTES,
  outboxRows,
  parseOutboxItems,
  type OutboxItem,
} from '../../src/results/notify/outbox';
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
    const got = parseOutboxItems(JSON.stringify([item(), ...bad, item({ job_id: 8 })]));
    assert.equal(got.bad, bad.length);
    assert.deepEqual(
      got.items.map((i) => i.job_id),
      [7, 8],
    );
  });

  test('text that is neither a JSON array nor a row document is one bad row, for any input', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const got = parseOutboxItems(s);
        if (!/^\s*[[{]/.test(s)) assert.deepEqual(got, { items: [], bad: 1 });
      }),
    );
    for (const s of ['{}', '{"items":5}', '{"targets":{}}', 'null', '7'])
      assert.deepEqual(parseOutboxItems(s), { items: [], bad: 1 }, s);
  });
});

describe('outbox rows (the tuple form record.ts writes)', () => {
  const arbItem: fc.Arbitrary<OutboxItem> = fc
    .record({
      job_id: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      job_name: fc.option(fc.string({ maxLength: 40 })),
      category: fc.option(fc.string({ maxLength: 20 })),
      run_id: fc.option(fc.stringMatching(/^[0-9a-f]{32}$/)),
      event: fc.constantFrom(
        'failed',
        'timed_out',
        'lost',
        'missed',
        'overdue',
        'recovered',
        'retry',
      ),
      failures: fc.integer({ min: 0, max: 1000 }),
      target_key: fc.constantFrom('0123456789abcdef', 'fedcba9876543210', '__proto__'),
      target: fc.constant({}),
    })
    .map((i) => ({
      ...i,
      // One target per key, as targetKey makes them.
      target: { on: ['failed'], webhook: `https://example.com/${i.target_key}` },
    }));

  test('round trip: what is written is read back, in order, nothing bad', () => {
    fc.assert(
      fc.property(fc.array(arbItem, { maxLength: 1200 }), (items) => {
        const rows = outboxRows(items);
        const back = rows.map(parseOutboxItems);
        assert.equal(
          back.reduce((n, r) => n + r.bad, 0),
          0,
        );
        assert.deepEqual(
          back.flatMap((r) => r.items),
          items,
        );
        for (const r of back) assert.ok(r.items.length <= OUTBOX_ITEMS_PER_ROW);
      }),
      { numRuns: 30 },
    );
  });

  test('a row is split before it passes OUTBOX_ROW_BYTES; each target is written once a row', () => {
    // Targets up to what notifications.target holds (64 KiB): 20 of 60 KB pass 1 MiB.
    const pad = 'x'.repeat(60_000);
    const items = Array.from({ length: 40 }, (_, i) =>
      item({
        job_id: i + 1,
        target_key: `k${i % 20}`,
        target: { on: ['failed'], pad: pad + (i % 20) },
      }),
    );
    const rows = outboxRows(items);
    for (const r of rows) assert.ok(Buffer.byteLength(r) <= OUTBOX_ROW_BYTES, `${r.length}`);
    assert.ok(rows.length >= 2, 'twenty 60 KB targets do not fit one row');
    const back = rows.map(parseOutboxItems);
    assert.equal(
      back.reduce((n, r) => n + r.bad, 0),
      0,
    );
    assert.deepEqual(
      back.flatMap((r) => r.items),
      items,
    );
    const small = outboxRows(Array.from({ length: 50 }, (_, i) => item({ job_id: i + 1 })));
    assert.equal(small.length, 1);
    assert.equal(small[0]!.split('example.com/h').length - 1, 1, 'the shared target once');
  });

  test('a tuple that names no target, or is malformed, is dropped and counted', () => {
    const good = outboxRows([item()])[0]!;
    const doc = JSON.parse(good) as { targets: object; items: unknown[] };
    doc.items.push(
      [8, 'x', null, null, 'failed', 1, 'nosuchkey'],
      [9, 'x', null, null, 'failed', 1],
      { job_id: 10 },
      [11, 'x', null, null, 'failed', 1, 'toString'],
    );
    const got = parseOutboxItems(JSON.stringify(doc));
    assert.equal(got.bad, 4);
    assert.deepEqual(
      got.items.map((i) => i.job_id),
      [7],
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
