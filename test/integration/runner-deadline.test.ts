/**
 * The starting deadline (docs/policies.md, docs/runner.md): a job message
 * with `start_by` whose time has passed when the runner would start it is
 * not run; it is reported `finished` with status `missed`. The real
 * `cronq-runner` from dist/ for the busy-runner case, and `Runner` in
 * process for its typed events.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { jobMessage, useRunnerFixture } from '../helpers/runner-harness';
import { uniqueName, waitFor } from '../helpers/services';

const fx = useRunnerFixture();

const MISSED_REASON = /^not started within its starting deadline \((\d+ ms|\d+ s) late\)$/;

function withDeadline(command: string, startBy: number, extra: Record<string, unknown> = {}) {
  return { ...jobMessage({ command }), start_by: new Date(startBy).toISOString(), ...extra };
}

describe('runner: starting deadline', () => {
  test('every runner busy: a run queued behind it past its start_by is recorded missed and never runs', async () => {
    const queue = uniqueName('qd');
    await fx.startRunner(queue, { CRONQ_CONCURRENCY: '1' });
    const busy = jobMessage({ command: 'sleep 4' });
    await fx.jobs.publish(queue, busy);
    await waitFor(() => fx.results.forRun(busy.run_id, 'starting')[0], {
      message: 'the busy run started',
    });
    const marker = path.join(fx.logDir, `late-${Date.now()}`);
    const startBy = Date.now() + 1000;
    const late = withDeadline(`echo ran > ${marker}`, startBy);
    await fx.jobs.publish(queue, late);

    const fin = await fx.results.final(late.run_id, 20_000);
    assert.equal(fin.type, 'finished');
    assert.equal(fin.status, 'missed');
    assert.equal(fin.return_code, null);
    assert.match(fin.reason ?? '', MISSED_REASON);
    assert.equal(fin.start_time, undefined, 'it never started');
    // Decided when the slot freed (the busy run's end), after its deadline.
    assert.ok(new Date(fin['x-send-datetime']).getTime() > startBy);
    const busyEnd = await fx.results.final(busy.run_id);
    assert.equal(busyEnd.status, 'succeeded');
    assert.equal(fx.results.forRun(late.run_id, 'starting').length, 0, 'no starting result');
    assert.equal(existsSync(marker), false, 'the command never ran');
    assert.equal(await fx.jobs.ready(queue), 0, 'acked, not requeued');
  });

  test('a start_by still ahead runs as usual; a passed one is missed with its event; start_by unreadable is poison', async () => {
    const { runner, events, queue } = await fx.startInProcess();
    const onTime = withDeadline('echo on time', Date.now() + 60_000);
    await fx.jobs.publish(queue, onTime);
    const [done] = await events.waitFor('run:finished', {
      where: (r) => r.runId === onTime.run_id,
    });
    assert.equal(done.status, 'succeeded');

    const startBy = Date.now() - 3000;
    const marker = path.join(fx.logDir, `missed-${Date.now()}`);
    const late = withDeadline(`echo ran > ${marker}`, startBy);
    await fx.jobs.publish(queue, late);
    const [missed] = await events.waitFor('run:missed', { where: (r) => r.runId === late.run_id });
    assert.equal(missed.startBy, startBy);
    assert.ok(missed.lateMs >= 3000, `late by ${missed.lateMs} ms`);
    const fin = await fx.results.final(late.run_id);
    assert.equal(fin.status, 'missed');
    assert.match(fin.reason ?? '', /\(\d+ s late\)$/);
    assert.equal(
      events.count('run:started', (r) => r.runId === late.run_id),
      0,
    );
    assert.equal(existsSync(marker), false);
    assert.equal(runner.status().missed, 1);

    const bad = withDeadline('echo never', 0, { start_by: 'soon' });
    await fx.jobs.publish(queue, bad);
    await events.waitFor('delivery:poison', { where: (p) => p.error.includes('start_by') });
    assert.equal(
      events.count('run:started', (r) => r.runId === bad.run_id),
      0,
    );
  });

  test('a run held for its occurrence is checked when it would start, not when it arrives', async () => {
    const { events, queue } = await fx.startInProcess();
    const due = Date.now() + 2000;
    // start_by before the occurrence cannot come from an injector (it adds
    // the deadline to the occurrence), but shows when the check is made:
    // on arrival the deadline is still ahead; when the run comes due it has passed.
    const startBy = Date.now() + 1000;
    const held = withDeadline('echo held', startBy, {
      scheduled_for: new Date(due).toISOString(),
      trigger: 'schedule',
    });
    await fx.jobs.publish(queue, held);
    const [taken] = await events.waitFor('delivery:taken', {
      where: (r) => r.runId === held.run_id,
    });
    assert.ok(taken.notBefore > Date.now(), 'held for its occurrence');
    const [missed] = await events.waitFor('run:missed', { where: (r) => r.runId === held.run_id });
    assert.ok(Date.now() >= due - 50, 'decided when it came due');
    assert.ok(missed.lateMs >= 500, `late by ${missed.lateMs} ms`);
    assert.equal(
      events.count('run:started', (r) => r.runId === held.run_id),
      0,
    );
  });
});
