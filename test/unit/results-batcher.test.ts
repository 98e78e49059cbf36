/**
 * The results consumer's group commit (src/results/batcher.ts) on mocked
 * timers: a full batch is written at once, a partial one flushMs after its
 * first item, never two writes at a time, and drain writes everything.
 */
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher } from '../../src/results/batcher';

/** A write the test finishes by hand, so "one write at a time" can be seen. */
function harness(batchSize: number, flushMs: number) {
  const writes: Array<{ items: number[]; done: () => void }> = [];
  const errors: unknown[] = [];
  const batcher = new Batcher<number>({
    batchSize,
    flushMs,
    write: (items) => new Promise<void>((done) => writes.push({ items, done })),
    onError: (err) => errors.push(err),
  });
  return { batcher, writes, errors };
}

/** Let the promise callbacks of a finished write run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('results batcher (group commit)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'] }));
  afterEach(() => mock.timers.reset());

  test('a batch that is not full is written flushMs after its first item, not before', () => {
    const { batcher, writes } = harness(10, 50);
    batcher.add(1);
    mock.timers.tick(20);
    batcher.add(2);
    mock.timers.tick(29);
    assert.equal(writes.length, 0, 'not before flushMs');
    mock.timers.tick(1);
    assert.deepEqual(
      writes.map((w) => w.items),
      [[1, 2]],
      'flushMs after the first, both together',
    );
  });

  test('a full batch is written at once, without waiting for the timer', () => {
    const { batcher, writes } = harness(3, 10_000);
    for (const i of [1, 2, 3, 4]) batcher.add(i);
    assert.deepEqual(
      writes.map((w) => w.items),
      [[1, 2, 3]],
    );
    assert.equal(batcher.size, 1);
  });

  test('one write at a time: what arrives during a write is taken as the next batch, full if it can', async () => {
    const { batcher, writes } = harness(3, 50);
    for (const i of [1, 2, 3]) batcher.add(i);
    for (const i of [4, 5, 6, 7]) batcher.add(i);
    mock.timers.tick(1000);
    assert.equal(writes.length, 1, 'the next batch waits for the write in progress');
    writes[0]!.done();
    await settle();
    assert.deepEqual(writes[1]!.items, [4, 5, 6], 'a full batch next');
    writes[1]!.done();
    await settle();
    assert.equal(writes.length, 2, 'the rest is not full: it waits for the timer');
    mock.timers.tick(50);
    assert.deepEqual(writes[2]?.items, [7]);
  });

  test('a failed write is reported and the next batch is written all the same', async () => {
    const errors: unknown[] = [];
    const written: number[][] = [];
    const batcher = new Batcher<number>({
      batchSize: 2,
      flushMs: 50,
      write: async (items) => {
        written.push(items);
        if (items[0] === 1) throw new Error('boom');
      },
      onError: (err) => errors.push(err),
    });
    for (const i of [1, 2, 3, 4]) batcher.add(i);
    await settle();
    assert.deepEqual(written, [
      [1, 2],
      [3, 4],
    ]);
    assert.equal(errors.length, 1);
  });

  test('drain writes everything in hand at once, whatever the batch size and timer say', async () => {
    const { batcher, writes } = harness(2, 60_000);
    for (const i of [1, 2, 3, 4, 5]) batcher.add(i);
    const drained = batcher.drain();
    batcher.add(6);
    for (let i = 0; i < 4 && writes[i]; i += 1) {
      writes[i]!.done();
      await settle();
    }
    await drained;
    assert.deepEqual(
      writes.map((w) => w.items),
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
    );
    assert.equal(batcher.size, 0);
  });

  test('drop forgets the waiting items it refuses', () => {
    const { batcher, writes } = harness(10, 50);
    for (const i of [1, 2, 3, 4]) batcher.add(i);
    batcher.drop((i) => i % 2 === 0);
    mock.timers.tick(50);
    assert.deepEqual(writes[0]!.items, [2, 4]);
  });

  test('busy while items wait, while a batch is written, and for quietMs after the last write', async () => {
    const { batcher, writes } = harness(2, 50);
    assert.equal(batcher.busy(250), false, 'nothing has arrived yet');
    batcher.add(1);
    assert.equal(batcher.busy(250), true, 'an item waits');
    batcher.add(2);
    assert.equal(batcher.size, 0, 'the full batch is being written');
    assert.equal(batcher.busy(250), true, 'the batch being written counts, though none waits');
    mock.timers.tick(1000);
    writes[0]!.done();
    await settle();
    assert.equal(
      batcher.busy(250),
      true,
      'just written: the next batch of a load may be a moment away',
    );
    mock.timers.tick(249);
    assert.equal(batcher.busy(250), true);
    mock.timers.tick(1);
    assert.equal(batcher.busy(250), false, 'quiet for quietMs');
  });
});
