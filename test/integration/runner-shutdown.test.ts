import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestVhost, uniqueName, waitFor, type TestVhost } from '../helpers/services';
import { startCommand, type Proc } from '../helpers/processes';
import { JobPublisher, ResultsCollector, jobMessage, pidAlive } from '../helpers/runner-harness';

let vhost: TestVhost;
let results: ResultsCollector;
let jobs: JobPublisher;
const logDir = mkdtempSync(path.join(os.tmpdir(), 'cronq-runner-shutdown-'));
const procs: Proc[] = [];

async function startRunner(queue: string, env: Record<string, string> = {}): Promise<Proc> {
  await jobs.declare(queue);
  const p = startCommand('cronq-runner', {
    env: { RABBITMQ_URL: vhost.url, LOG_PATH: logDir, ...env },
    args: ['--queue', queue],
  });
  procs.push(p);
  await p.waitForLine('AMQP connected');
  return p;
}

before(async () => {
  vhost = await createTestVhost();
  results = new ResultsCollector(vhost.url);
  await results.start();
  jobs = new JobPublisher(vhost.url);
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop(3000)));
  await results.close();
  await jobs.close();
  await vhost.drop();
});

test('SIGTERM stops taking jobs, lets the running job finish within the grace, and exits 0', async () => {
  const q = uniqueName('q');
  const runner = await startRunner(q);
  const msg = jobMessage({ command: 'sleep 1; echo finished-normally' });
  await jobs.publish(q, msg);
  await waitFor(() => results.forRun(msg.run_id, 'starting').length === 1, {
    message: 'job started',
  });
  runner.kill('SIGTERM');
  await runner.waitForLine('waiting for running jobs to finish');
  const later = jobMessage({ command: 'echo should-not-run-here' });
  await jobs.publish(q, later);
  const exit = await runner.exited;
  assert.equal(exit.code, 0);
  const fin = await results.final(msg.run_id);
  assert.equal(fin.status, 'succeeded');
  assert.equal(fin.output, 'finished-normally\n');
  assert.equal(results.forRun(later.run_id).length, 0, 'no job taken after SIGTERM');
  assert.equal(await jobs.ready(q), 1, 'the later job waits in the queue for another runner');
});

test('SIGTERM past the grace terminates the job with its process group and reports it finished with reason "runner shutdown"', async () => {
  const q = uniqueName('q');
  const runner = await startRunner(q, {
    CRONQ_SHUTDOWN_GRACE_SECONDS: '0.5',
    CRONQ_KILL_GRACE_SECONDS: '1',
  });
  const pidFile = path.join(logDir, `shutdown-${Date.now()}.pid`);
  const msg = jobMessage({ command: `sleep 300 & echo $! > ${pidFile}; wait` });
  await jobs.publish(q, msg);
  await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', {
    message: 'job running',
  });
  const pid = Number(readFileSync(pidFile, 'utf8'));
  const t0 = Date.now();
  runner.kill('SIGTERM');
  const exit = await runner.exited;
  assert.equal(exit.code, 0);
  assert.ok(Date.now() - t0 < 5000, 'stopped within grace + kill grace');
  const fin = await results.final(msg.run_id);
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
  const runner = await startRunner(q, { CRONQ_SHUTDOWN_GRACE_SECONDS: '60' });
  const pidFile = path.join(logDir, `second-${Date.now()}.pid`);
  const msg = jobMessage({ command: `sleep 300 & echo $! > ${pidFile}; wait` });
  await jobs.publish(q, msg);
  await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', {
    message: 'job running',
  });
  const pid = Number(readFileSync(pidFile, 'utf8'));
  runner.kill('SIGTERM');
  await runner.waitForLine('waiting for running jobs to finish');
  const t0 = Date.now();
  runner.kill('SIGTERM');
  const exit = await runner.exited;
  assert.notEqual(exit.code, 0);
  assert.ok(Date.now() - t0 < 2000);
  await waitFor(() => !pidAlive(pid), {
    timeoutMs: 3000,
    message: `sleep ${pid} killed with the runner`,
  });
});
