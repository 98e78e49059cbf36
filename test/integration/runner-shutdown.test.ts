import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { uniqueName, waitFor } from '../helpers/services';
import { useRunnerFixture, jobMessage, pidAlive } from '../helpers/runner-harness';

const fx = useRunnerFixture();

test('SIGTERM stops taking jobs, lets the running job finish within the grace, and exits 0', async () => {
  const q = uniqueName('q');
  const runner = await fx.startRunner(q);
  const msg = jobMessage({ command: 'sleep 1; echo finished-normally' });
  await fx.jobs.publish(q, msg);
  await waitFor(() => fx.results.forRun(msg.run_id, 'starting').length === 1, {
    message: 'job started',
  });
  runner.kill('SIGTERM');
  // Stopped taking jobs: its consumer is gone from the queue.
  await waitFor(async () => (await fx.jobs.consumers(q)) === 0, { message: 'consumer cancelled' });
  const later = jobMessage({ command: 'echo should-not-run-here' });
  await fx.jobs.publish(q, later);
  const exit = await runner.exited;
  assert.equal(exit.code, 0);
  const fin = await fx.results.final(msg.run_id);
  assert.equal(fin.status, 'succeeded');
  assert.equal(fin.output, 'finished-normally\n');
  assert.equal(fx.results.forRun(later.run_id).length, 0, 'no job taken after SIGTERM');
  assert.equal(await fx.jobs.ready(q), 1, 'the later job waits in the queue for another runner');
});

test('SIGTERM past the grace terminates the job with its process group and reports it finished with reason "runner shutdown"', async () => {
  const q = uniqueName('q');
  const runner = await fx.startRunner(q, {
    CRONQ_SHUTDOWN_GRACE_SECONDS: '0.5',
    CRONQ_KILL_GRACE_SECONDS: '1',
  });
  const pidFile = path.join(fx.logDir, `shutdown-${Date.now()}.pid`);
  const msg = jobMessage({ command: `sleep 300 & echo $! > ${pidFile}; wait` });
  await fx.jobs.publish(q, msg);
  await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', {
    message: 'job running',
  });
  const pid = Number(readFileSync(pidFile, 'utf8'));
  const t0 = Date.now();
  runner.kill('SIGTERM');
  const exit = await runner.exited;
  assert.equal(exit.code, 0);
  // Grace 0.5 s + kill grace 1 s; the bound leaves room for a loaded machine, far below the job's 300 s.
  assert.ok(Date.now() - t0 < 5000, 'stopped within grace + kill grace');
  const fin = await fx.results.final(msg.run_id);
  assert.equal(fin.type, 'finished');
  assert.equal(fin.status, 'failed');
  assert.match(fin.reason!, /^runner shutdown/);
  await waitFor(() => !pidAlive(pid), {
    timeoutMs: 3000,
    message: `background sleep ${pid} is gone`,
  });
});

test('a second signal exits at once and kills the running jobs', async () => {
  const q = uniqueName('q');
  const runner = await fx.startRunner(q, { CRONQ_SHUTDOWN_GRACE_SECONDS: '60' });
  const pidFile = path.join(fx.logDir, `second-${Date.now()}.pid`);
  const msg = jobMessage({ command: `sleep 300 & echo $! > ${pidFile}; wait` });
  await fx.jobs.publish(q, msg);
  await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', {
    message: 'job running',
  });
  const pid = Number(readFileSync(pidFile, 'utf8'));
  runner.kill('SIGTERM');
  await waitFor(async () => (await fx.jobs.consumers(q)) === 0, { message: 'consumer cancelled' });
  const t0 = Date.now();
  runner.kill('SIGTERM');
  const exit = await runner.exited;
  assert.notEqual(exit.code, 0);
  // "At once" against a 60 s grace: the bound only has to tell the two apart, with room for load.
  assert.ok(Date.now() - t0 < 5000, `exited ${Date.now() - t0} ms after the second signal`);
  await waitFor(() => !pidAlive(pid), {
    timeoutMs: 3000,
    message: `sleep ${pid} killed with the runner`,
  });
});
