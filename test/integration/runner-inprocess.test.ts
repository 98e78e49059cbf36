/**
 * The runner's rules, with `Runner` constructed in this process against the
 * real broker (its own vhost) and real shell commands, asserted through its
 * typed events (src/runner/events.ts) rather than its log lines.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfirmPublisher } from '../../src/core/amqp';
import { silentLogger } from '../../src/core/logger';
import { rabbitmqctl, waitFor } from '../helpers/services';
import { useRunnerFixture, jobMessage } from '../helpers/runner-harness';

const fx = useRunnerFixture();

/** A job message for a run published ahead of its occurrence `due` (epoch ms). */
function scheduledAhead(command: string, due: number) {
  return {
    ...jobMessage({ command }),
    scheduled_for: new Date(due).toISOString(),
    trigger: 'schedule',
  };
}

describe('Runner in process', () => {
  test('a run delivered again is acked without running it again', async () => {
    const { events, queue } = await fx.startInProcess();
    const marker = path.join(fx.logDir, `dup-${Date.now()}`);
    const msg = jobMessage({ command: `echo ran >> ${marker}` });
    await fx.jobs.publish(queue, msg);
    await events.waitFor('run:finished', { where: (r) => r.runId === msg.run_id });
    await fx.jobs.publish(queue, msg);
    await events.waitFor('delivery:duplicate', { where: (r) => r.runId === msg.run_id });
    assert.equal(
      events.count('run:started', (r) => r.runId === msg.run_id),
      1,
    );
    assert.equal(await fx.jobs.ready(queue), 0, 'the duplicate is acked, not requeued');
    assert.equal(readFileSync(marker, 'utf8'), 'ran\n');
  });

  test('poison is set aside (rejected without requeue) and the next good message runs', async () => {
    const { runner, events, queue } = await fx.startInProcess();
    await fx.jobs.publish(queue, 'this is not json');
    await fx.jobs.publish(queue, { job_id: 7, cmd: 'true' }); // no run id
    const good = jobMessage({ command: 'echo fine' });
    await fx.jobs.publish(queue, good);
    const [fin] = await events.waitFor('run:finished', { where: (r) => r.runId === good.run_id });
    assert.equal(fin.status, 'succeeded');
    assert.equal(events.count('delivery:poison'), 2);
    assert.equal(await fx.jobs.ready(queue), 0, 'rejected messages are not requeued');
    assert.equal(runner.status().poison, 2);
  });

  test('the slots bound concurrency; a delivery that waits holdMs for a slot goes back to the queue, and the runner consumes again once a slot frees', async () => {
    const { runner, events, queue } = await fx.startInProcess({
      env: { CRONQ_CONCURRENCY: '2' },
      holdMs: 400,
    });
    let running = 0;
    let most = 0;
    runner.on('run:started', () => (most = Math.max(most, ++running)));
    runner.on('run:finished', () => (running -= 1));
    const msgs = [1, 2, 3].map((i) => jobMessage({ command: 'sleep 1.5', jobId: i }));
    for (const m of msgs) await fx.jobs.publish(queue, m);
    await events.waitFor('run:finished', { n: 3, timeoutMs: 15_000 });
    assert.equal(most, 2, 'never more than two at once');
    const [held] = await events.waitFor('delivery:returned', { where: (r) => r.why === 'hold' });
    const third = msgs.find((m) => m.run_id === held.runId)!;
    assert.ok(third, 'the returned delivery is one of ours');
    assert.equal(events.count('consumer:held', (h) => h.reason === 'slots') >= 1, true);
    assert.equal(events.count('consumer:released', (h) => h.reason === 'slots') >= 1, true);
    // It ran after its return, once: given back, then taken again when a slot freed.
    assert.equal(
      events.count('run:started', (r) => r.runId === third.run_id),
      1,
    );
    assert.equal(await fx.jobs.ready(queue), 0);
  });

  test('a delivery given back after holdMs is in the queue for another runner while this one is busy', async () => {
    const { events, queue } = await fx.startInProcess({ holdMs: 300 });
    const long = jobMessage({ command: 'sleep 4' });
    await fx.jobs.publish(queue, long);
    await events.waitFor('run:started', { where: (r) => r.runId === long.run_id });
    const next = jobMessage({ command: 'true' });
    await fx.jobs.publish(queue, next);
    await events.waitFor('delivery:taken', { where: (r) => r.runId === next.run_id });
    await events.waitFor('delivery:returned', {
      where: (r) => r.runId === next.run_id && r.why === 'hold',
    });
    await events.waitFor('consumer:held', { where: (h) => h.reason === 'slots' });
    await waitFor(async () => (await fx.jobs.ready(queue)) === 1, {
      message: 'the returned delivery ready in the queue',
    });
    assert.equal(
      events.count('run:started', (r) => r.runId === next.run_id),
      0,
    );
    // The long run ends, a slot frees, the runner consumes again and runs it.
    await events.waitFor('run:finished', {
      where: (r) => r.runId === next.run_id,
      timeoutMs: 10_000,
    });
  });

  test('a run published ahead of its occurrence does not start before it, and takes no slot while it waits', async () => {
    const { events, queue } = await fx.startInProcess();
    const due = Date.now() + 1500;
    const early = scheduledAhead('true', due);
    const now = jobMessage({ command: 'true' });
    await fx.jobs.publish(queue, early);
    await fx.jobs.publish(queue, now);
    const [taken] = await events.waitFor('delivery:taken', {
      where: (r) => r.runId === early.run_id,
    });
    assert.ok(taken.notBefore >= due - 1 && taken.notBefore <= due, `notBefore ${taken.notBefore}`);
    const [nowStarted] = await events.waitFor('run:started', {
      where: (r) => r.runId === now.run_id,
    });
    assert.ok(nowStarted.startTime.getTime() < due, 'the due run went first (concurrency 1)');
    const [earlyStarted] = await events.waitFor('run:started', {
      where: (r) => r.runId === early.run_id,
    });
    assert.ok(
      earlyStarted.startTime.getTime() >= due,
      `started ${due - earlyStarted.startTime.getTime()} ms before its occurrence`,
    );
  });

  test('the result outbox over its limit holds consuming, and back under it releases it, with no heartbeat in between', async () => {
    // Confirms wait for `open` while it is closed, so results pile up in the outbox.
    let open!: () => void;
    let gate: Promise<void> | undefined = new Promise((r) => (open = r));
    class GatedPublisher extends ConfirmPublisher {
      override async publish(...args: Parameters<ConfirmPublisher['publish']>) {
        await gate;
        return super.publish(...args);
      }
    }
    const { runner, events, queue } = await fx.startInProcess({
      config: { bufferMaxBytes: 2048, heartbeatMs: 3_600_000 },
      publisher: (c) => new GatedPublisher(c, silentLogger()),
    });
    const big = jobMessage({ command: "head -c 4000 /dev/zero | tr '\\0' x" });
    await fx.jobs.publish(queue, big);
    await events.waitFor('run:finished', { where: (r) => r.runId === big.run_id });
    await events.waitFor('consumer:held', { where: (h) => h.reason === 'result-buffer' });
    await events.waitFor('consumer:idle');
    assert.deepEqual(runner.status().heldFor, ['result-buffer']);
    const next = jobMessage({ command: 'true' });
    await fx.jobs.publish(queue, next);
    // Held: the broker keeps it. (A fixed wait: what is asserted is that nothing happens.)
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(
      events.count('delivery:taken', (r) => r.runId === next.run_id),
      0,
    );
    assert.equal(await fx.jobs.ready(queue), 1);
    open();
    gate = undefined;
    await events.waitFor('consumer:released', { where: (h) => h.reason === 'result-buffer' });
    await events.waitFor('run:finished', { where: (r) => r.runId === next.run_id });
    assert.equal((await fx.results.final(big.run_id)).output!.length, 4000);
    assert.equal(
      fx.results.results.filter((r) => r.type === 'heartbeat' && r.run_id === big.run_id).length,
      0,
      'no heartbeat was needed to notice the drain',
    );
  });

  test('a waiting delivery whose channel is lost is left to its redelivery, which runs once', async () => {
    const { events, queue } = await fx.startInProcess({ holdMs: 30_000 });
    // Long enough to outlast finding and closing the connection with rabbitmqctl (seconds).
    const long = jobMessage({ command: 'sleep 6' });
    const next = jobMessage({ command: 'true' });
    await fx.jobs.publish(queue, long);
    await events.waitFor('run:started', { where: (r) => r.runId === long.run_id });
    await fx.jobs.publish(queue, next);
    await events.waitFor('delivery:taken', { where: (r) => r.runId === next.run_id });
    // Only this runner's connection in this test's vhost: not disruptive for anyone else.
    const rows = (
      await rabbitmqctl('list_connections', '-q', 'pid', 'vhost', 'client_properties')
    ).split('\n');
    const row = rows.find(
      (r) => r.includes(`\t${fx.vhost.vhost}\t`) && r.includes(`runner-inprocess ${queue}`),
    );
    assert.ok(row, 'runner connection found');
    await rabbitmqctl('close_connection', row.split('\t')[0]!, 'test cut');
    await events.waitFor('delivery:returned', {
      where: (r) => r.runId === next.run_id && r.why === 'lost',
    });
    await events.waitFor('run:finished', {
      where: (r) => r.runId === next.run_id,
      timeoutMs: 20_000,
    });
    assert.equal(
      events.count('run:started', (r) => r.runId === next.run_id),
      1,
    );
    assert.equal(
      events.count('run:started', (r) => r.runId === long.run_id),
      1,
    );
    assert.equal((await fx.results.final(long.run_id, 20_000)).status, 'succeeded');
  });

  test('stop lets the running job finish, gives the waiting delivery back, and takes nothing new', async () => {
    const r = await fx.startInProcess();
    const { events, queue } = r;
    const running = jobMessage({ command: 'sleep 1; echo finished-normally' });
    const waiting = jobMessage({ command: 'echo should-not-run-here' });
    await fx.jobs.publish(queue, running);
    await events.waitFor('run:started', { where: (e) => e.runId === running.run_id });
    await fx.jobs.publish(queue, waiting);
    await events.waitFor('delivery:taken', { where: (e) => e.runId === waiting.run_id });
    const stopping = r.stop();
    const [s] = await events.waitFor('runner:stopping');
    assert.equal(s.running, 1);
    await events.waitFor('delivery:returned', {
      where: (e) => e.runId === waiting.run_id && e.why === 'stopping',
    });
    await stopping;
    await events.waitFor('runner:stopped');
    const [fin] = events.all('run:finished', (e) => e.runId === running.run_id);
    assert.equal(fin?.[0].status, 'succeeded');
    assert.equal(
      events.count('run:started', (e) => e.runId === waiting.run_id),
      0,
    );
    assert.equal(await fx.jobs.ready(queue), 1, 'the waiting job is back in the queue');
    assert.equal((await fx.results.final(running.run_id)).output, 'finished-normally\n');
  });

  test('stop past the grace terminates the job and reports it with reason "runner shutdown"', async () => {
    const r = await fx.startInProcess({
      env: { CRONQ_SHUTDOWN_GRACE_SECONDS: '0.3', CRONQ_KILL_GRACE_SECONDS: '0.5' },
    });
    const msg = jobMessage({ command: 'sleep 300' });
    await fx.jobs.publish(r.queue, msg);
    await r.events.waitFor('run:started', { where: (e) => e.runId === msg.run_id });
    const t0 = Date.now();
    await r.stop();
    // Grace 0.3 s + kill grace 0.5 s; the bound is generous for a loaded machine.
    assert.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
    const [[fin]] = r.events.all('run:finished', (e) => e.runId === msg.run_id);
    assert.equal(fin!.status, 'failed');
    assert.match(fin!.reason ?? '', /^runner shutdown/);
  });
});
