/**
 * DISRUPTIVE: restarts the shared RabbitMQ and changes broker-wide settings.
 * Run only as: flock /tmp/cronq-disruptive.lock node --import tsx --test test/disruptive/runner-broker.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { rabbitmqctl, uniqueName, waitFor } from '../helpers/services';
import { useRunnerFixture, jobMessage } from '../helpers/runner-harness';

const fx = useRunnerFixture({ CRONQ_HEARTBEAT_SECONDS: '0.5' });

async function brokerUp(): Promise<boolean> {
  try {
    const c = await amqp.connect(fx.vhost.url);
    await c.close();
    return true;
  } catch {
    return false;
  }
}

test(
  'a broker restart mid-job: the finished result still arrives afterwards, and the runner consumes again',
  { timeout: 90_000 },
  async () => {
    const q = uniqueName('q');
    const runner = await fx.startRunner(q);
    const msg = jobMessage({ command: 'sleep 2; echo survived the broker' });
    await fx.jobs.publish(q, msg);
    await waitFor(() => fx.results.forRun(msg.run_id, 'starting').length === 1, {
      message: 'job started',
    });
    try {
      await rabbitmqctl('stop_app');
      await runner.waitForLine('AMQP connection lost', 20_000);
      // The job ends while the broker is away: its result must wait in the runner's buffer.
      await runner.waitForLine(new RegExp(`"run_id":"${msg.run_id}".*"msg":"finished"`), 20_000);
    } finally {
      await rabbitmqctl('start_app');
    }
    await waitFor(brokerUp, { timeoutMs: 30_000, message: 'broker back' });
    const fin = await fx.results.final(msg.run_id, 30_000);
    assert.equal(fin.status, 'succeeded');
    assert.equal(fin.output, 'survived the broker\n');
    await runner.waitForLine(/"reconnect":true.*AMQP connected/, 30_000);
    const next = jobMessage({ command: 'echo after restart' });
    await fx.jobs.publish(q, next);
    assert.equal((await fx.results.final(next.run_id, 20_000)).status, 'succeeded');
  },
);

/** Read an application env value of the broker as Erlang text ("{ok,1800000}" or "undefined"). */
async function getEnv(key: string): Promise<string> {
  return (await rabbitmqctl('eval', `application:get_env(rabbit, ${key}).`)).trim();
}

async function restoreEnv(key: string, original: string): Promise<void> {
  const m = /^\{ok,(.+)\}$/.exec(original);
  if (m) await rabbitmqctl('eval', `application:set_env(rabbit, ${key}, ${m[1]}).`);
  else await rabbitmqctl('eval', `application:unset_env(rabbit, ${key}).`);
}

test(
  'with consumer_timeout lowered to 5 s, a 9 s job finishes, its channel survives, and the next job runs',
  { timeout: 90_000 },
  async () => {
    const originalTimeout = await getEnv('consumer_timeout');
    const originalTick = await getEnv('channel_tick_interval');
    try {
      await rabbitmqctl('eval', 'application:set_env(rabbit, consumer_timeout, 5000).');
      // Channels check the timeout on their tick (60 s by default); a 1 s tick makes the check bite within the test.
      await rabbitmqctl('eval', 'application:set_env(rabbit, channel_tick_interval, 1000).');

      // Control: a consumer that holds an unacked delivery loses its channel under these settings.
      const control = uniqueName('ctrl');
      await fx.jobs.declare(control);
      await fx.jobs.publish(control, jobMessage({ command: 'true' }));
      const conn = await fx.vhost.connect();
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => ch.once('close', () => resolve()));
      await ch.consume(control, () => undefined, { noAck: false });
      await waitFor(
        async () =>
          (await Promise.race([
            closed.then(() => true),
            new Promise((r) => setTimeout(() => r(false), 200)),
          ])) as boolean,
        {
          timeoutMs: 20_000,
          message: 'the control channel holding an unacked delivery is closed by consumer_timeout',
        },
      );

      const q = uniqueName('q');
      const runner = await fx.startRunner(q);
      const long = jobMessage({ command: 'sleep 9; echo long job done' });
      await fx.jobs.publish(q, long);
      const fin = await fx.results.final(long.run_id, 30_000);
      assert.equal(fin.status, 'succeeded');
      assert.equal(fin.output, 'long job done\n');
      assert.ok(
        !runner.output().includes('consumer channel closed'),
        'the runner channel was never closed',
      );
      const next = jobMessage({ command: 'echo next' });
      await fx.jobs.publish(q, next);
      assert.equal((await fx.results.final(next.run_id, 10_000)).status, 'succeeded');
    } finally {
      await restoreEnv('consumer_timeout', originalTimeout);
      await restoreEnv('channel_tick_interval', originalTick);
    }
    assert.equal(await getEnv('consumer_timeout'), originalTimeout);
  },
);

test(
  'results a runner could not deliver before it stopped (broker away) are saved to disk and published by the next runner',
  { timeout: 90_000 },
  async () => {
    const q = uniqueName('q');
    const bufferDir = mkdtempSync(path.join(os.tmpdir(), 'cronq-runner-buffer-'));
    const first = await fx.startRunner(q, { CRONQ_RESULT_BUFFER_PATH: bufferDir });
    // The job ends only once the runner has lost the broker (the test
    // creates the flag then), so its `finished` cannot be confirmed first.
    const flag = path.join(mkdtempSync(path.join(os.tmpdir(), 'cronq-flag-')), 'broker-gone');
    const msg = jobMessage({
      command: `while [ ! -e '${flag}' ]; do sleep 0.05; done; echo kept on disk`,
    });
    await fx.jobs.publish(q, msg);
    await waitFor(() => fx.results.forRun(msg.run_id, 'starting').length === 1, {
      message: 'job started',
    });
    try {
      await rabbitmqctl('stop_app');
      await first.waitForLine('AMQP connection lost', 20_000);
      writeFileSync(flag, '');
      await first.waitForLine(new RegExp(`"run_id":"${msg.run_id}".*"msg":"finished"`), 20_000);
      first.kill('SIGTERM');
      const exit = await first.exited;
      assert.equal(exit.code, 0);
      assert.ok(first.output().includes('results not confirmed before stop were saved'));
      assert.ok(
        readdirSync(bufferDir).some((f) => f.endsWith('.jsonl')),
        'a spill file was written',
      );
    } finally {
      await rabbitmqctl('start_app');
    }
    await waitFor(brokerUp, { timeoutMs: 30_000, message: 'broker back' });
    assert.equal(fx.results.forRun(msg.run_id, 'finished').length, 0);
    const second = await fx.startRunner(q, { CRONQ_RESULT_BUFFER_PATH: bufferDir });
    const fin = await fx.results.final(msg.run_id, 20_000);
    assert.equal(fin.output, 'kept on disk\n');
    assert.ok(second.output().includes('publishing results a previous runner could not deliver'));
    await waitFor(() => readdirSync(bufferDir).length === 0, {
      message: 'spill file removed once adopted',
    });
  },
);
