/**
 * The runner's result outbox (src/runner/result-outbox.ts) in process, with
 * a publisher that confirms, fails or holds its confirms as the test says,
 * real spill files in a temporary folder, and Node's mock timers for the
 * republish backoff and the flush grace.
 */
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Options } from 'amqplib';
import type { ChannelModel, PublishResult } from '../../src/core/amqp';
import { silentLogger } from '../../src/core/logger';
import type { JobToRun, ResultMessage } from '../../src/core/messages';
import type { OutboxEvents } from '../../src/runner';
import { ResultOutbox } from '../../src/runner/result-outbox';
import { heartbeatResult, resultMessageId, startingResult } from '../../src/runner/result-messages';
import { EventMonitor } from '../helpers/event-monitor';

/** Publishes nowhere: records what it was given and confirms, fails, or holds the confirm. */
class FakePublisher {
  mode: 'confirm' | 'fail' | 'hold' = 'confirm';
  readonly published: Array<{ messageId: string; body: string }> = [];
  private held: Array<() => void> = [];

  publish(_ex: string, _rk: string, body: Buffer, opts: Options.Publish = {}) {
    this.published.push({ messageId: String(opts.messageId), body: body.toString('utf8') });
    if (this.mode === 'fail') return Promise.reject(new Error('broker away'));
    if (this.mode === 'hold')
      return new Promise<PublishResult>((r) => this.held.push(() => r({ routed: true })));
    return Promise.resolve({ routed: true });
  }

  confirmHeld(): void {
    for (const f of this.held.splice(0)) f();
  }

  ids(): string[] {
    return this.published.map((p) => p.messageId);
  }
}

const connection = { isConnected: true, connection: async () => ({}) as ChannelModel };

function job(runId: string): JobToRun {
  return {
    runId,
    jobId: 1,
    name: 'outbox test',
    command: 'true',
    timeoutSeconds: null,
    scheduledFor: null,
    notBefore: null,
  };
}

const common = (runId: string) => ({ job: job(runId), host: 'h', startTime: new Date(0) });

function finished(runId: string, output: string): ResultMessage {
  return { ...startingResult(common(runId)), type: 'finished', status: 'succeeded', output };
}

/** Let promise callbacks and I/O callbacks run (setImmediate is not mocked). */
async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

function makeOutbox(pub: FakePublisher, dir: string, maxBytes = 1 << 20) {
  const outbox = new ResultOutbox(pub, connection, {
    dir,
    maxBytes,
    logger: silentLogger(),
    backoff: { delay: () => 1000 },
  });
  return { outbox, events: new EventMonitor<OutboxEvents>(outbox) };
}

describe('ResultOutbox', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'cronq-outbox-test-'));
    mock.timers.enable({ apis: ['setTimeout'] });
  });
  afterEach(() => mock.timers.reset());

  test('while the broker is away, heartbeats of a run fold into one; when it is back the backlog goes out in order with only the newest beat', async () => {
    const pub = new FakePublisher();
    const { outbox } = makeOutbox(pub, dir);
    await outbox.start();
    pub.mode = 'fail';
    const starting = outbox.send(startingResult(common('r1')), resultMessageId('r1', 'starting'));
    await settle();
    const beats = [1, 2, 3].map((n) =>
      outbox.send(heartbeatResult(common('r1')), resultMessageId('r1', 'heartbeat', n)),
    );
    assert.equal(outbox.size, 2, 'starting and one heartbeat');
    pub.mode = 'confirm';
    pub.published.length = 0;
    mock.timers.tick(1000); // the republish backoff
    await settle();
    await Promise.all([starting, ...beats]);
    assert.deepEqual(pub.ids(), ['r1.starting', 'r1.heartbeat.3']);
    assert.equal(outbox.size, 0);
  });

  test('over its limit it drops unsent heartbeats, says so once, and says so again when back under', async () => {
    const pub = new FakePublisher();
    const { outbox, events } = makeOutbox(pub, dir, 1500);
    await outbox.start();
    pub.mode = 'fail';
    void outbox.send(startingResult(common('r2')), resultMessageId('r2', 'starting'));
    await settle();
    const beat = outbox.send(heartbeatResult(common('r2')), resultMessageId('r2', 'heartbeat', 1));
    void outbox.send(finished('r2', 'x'.repeat(2000)), resultMessageId('r2', 'finished'));
    await beat; // dropped: a dropped beat's sender is not kept waiting
    assert.equal(outbox.status().droppedHeartbeats, 1);
    assert.equal(outbox.overLimit, true);
    void outbox.send(heartbeatResult(common('r3')), resultMessageId('r3', 'heartbeat', 1));
    assert.equal(events.count('over-limit'), 1);
    assert.equal(events.count('under-limit'), 0);
    pub.mode = 'confirm';
    mock.timers.tick(1000);
    await settle();
    assert.equal(events.count('under-limit'), 1);
    assert.equal(outbox.overLimit, false);
  });

  test('results unconfirmed at stop are spilled; the next outbox on the folder publishes them first and then deletes the file', async () => {
    const first = new FakePublisher();
    first.mode = 'hold';
    const a = makeOutbox(first, dir);
    await a.outbox.start();
    void a.outbox.send(startingResult(common('r4')), resultMessageId('r4', 'starting'));
    void a.outbox.send(finished('r4', 'kept on disk\n'), resultMessageId('r4', 'finished'));
    const flushed = a.outbox.flush(5000);
    mock.timers.tick(5000);
    assert.equal(await flushed, false, 'nothing confirmed within the flush grace');
    await a.outbox.stop();
    const [[spilled]] = a.events.all('spilled');
    assert.equal(spilled!.results, 2);
    assert.ok(existsSync(spilled!.file));

    // A spill file of a live runner (here: this test's parent process) is not taken.
    const otherLive = path.join(dir, `results-${process.ppid}-0badc0de.jsonl`);
    writeFileSync(otherLive, readFileSync(spilled!.file));

    const second = new FakePublisher();
    const b = makeOutbox(second, dir);
    await b.outbox.start();
    void b.outbox.send(startingResult(common('r5')), resultMessageId('r5', 'starting'));
    const [[recovered]] = b.events.all('recovered');
    assert.equal(recovered!.results, 2);
    await b.events.waitFor('recovered:confirmed');
    assert.deepEqual(second.ids(), ['r4.starting', 'r4.finished', 'r5.starting']);
    const fin = JSON.parse(second.published[1]!.body) as ResultMessage;
    assert.equal(fin.output, 'kept on disk\n');
    await settle();
    assert.deepEqual(readdirSync(dir), [path.basename(otherLive)]);
    await b.outbox.stop();
  });

  test('with everything confirmed, stop writes no file', async () => {
    const pub = new FakePublisher();
    const { outbox, events } = makeOutbox(pub, dir);
    await outbox.start();
    await outbox.send(startingResult(common('r6')), resultMessageId('r6', 'starting'));
    assert.equal(await outbox.flush(5000), true);
    await outbox.stop();
    assert.equal(events.count('spilled'), 0);
    assert.deepEqual(readdirSync(dir), []);
  });
});
