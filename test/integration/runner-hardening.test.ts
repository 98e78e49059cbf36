import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { uniqueName, waitFor } from '../helpers/services';
import type { Proc } from '../helpers/processes';
import { useRunnerFixture, jobMessage } from '../helpers/runner-harness';

const DB_SECRET = 'db-pass-s3cr3t-6671';
const TOKEN = 'api-token-s3cr3t-9912';
const fx = useRunnerFixture();

/** The runner's environment for these tests: every kind of CronQ secret, and one allow-listed setting. */
const secrets = () => ({
  DATABASE_URL: `mysql://cronq:${DB_SECRET}@127.0.0.1/cronq`,
  CRONQ_MYSQL: `mysql://cronq:${DB_SECRET}@127.0.0.1/cronq2`,
  CRONQ_API_TOKEN: TOKEN,
  // Not CRONQ_MESSAGE_KEY: with it the runner would refuse these tests' unsigned messages
  // (test/integration/signing.test.ts checks that the key stays out of a job's environment).
  CRONQ_SMTP_URL: 'smtp://mailer:msg-key-s3cr3t-1234@mail.example.com',
  CRONQ_WEBHOOK_SECRET: 'hook-s3cr3t-5678',
  RABBITMQ_PASS: 'rabbit-pass-s3cr3t',
  CRONQ_APP_REGION: 'eu-west-9',
  CRONQ_APP_TIER: 'gold',
  PLAIN_VAR: 'plain-value',
  CRONQ_JOB_ENV_PASS: 'CRONQ_APP_*,LOG_PATH',
});

function envOf(output: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of output.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

describe('cronq-runner hardening', () => {
  let queue: string;
  let runner: Proc;
  before(async () => {
    queue = uniqueName('qh');
    runner = await fx.startRunner(queue, { ...secrets(), CRONQ_JOB_LOG_MAX_BYTES: '16384' });
  });

  test('a 30-day timeout (past 2^31-1 ms) lets `sleep 1; echo ok` finish, and 1e300 s means no limit', async () => {
    const month = jobMessage({ command: 'sleep 1; echo ok', timeout: 2592000 });
    const huge = jobMessage({ command: 'sleep 1; echo ok', timeout: 1e300 });
    await fx.jobs.publish(queue, month);
    await fx.jobs.publish(queue, huge);
    for (const m of [month, huge]) {
      const fin = await fx.results.final(m.run_id);
      assert.equal(fin.type, 'finished');
      assert.equal(fin.status, 'succeeded', fin.reason);
      assert.equal(fin.return_code, 0);
      assert.equal(fin.output, 'ok\n');
    }
  });

  test('CRONQ_DEFAULT_TIMEOUT_SECONDS at its maximum (365 days) does not end a job at once', async () => {
    const q = uniqueName('qd');
    await fx.startRunner(q, { CRONQ_DEFAULT_TIMEOUT_SECONDS: '31536000' });
    const msg = jobMessage({ command: 'sleep 1; echo ok' });
    await fx.jobs.publish(q, msg);
    const fin = await fx.results.final(msg.run_id);
    assert.equal(fin.status, 'succeeded', fin.reason);
    assert.equal(fin.return_code, 0);
  });

  test('a timeout of -1 or "abc" makes the message malformed: rejected, nothing runs, the next job does', async () => {
    const bad1 = jobMessage({ command: 'echo ran', timeout: -1 });
    const bad2 = { ...jobMessage({ command: 'echo ran' }), timeout: 'abc' };
    const good = jobMessage({ command: 'echo good' });
    await fx.jobs.publish(queue, bad1);
    await fx.jobs.publish(queue, bad2);
    await fx.jobs.publish(queue, good);
    assert.equal((await fx.results.final(good.run_id)).status, 'succeeded');
    // Taken in order at concurrency 1, so both were dealt with before the good one: not requeued, no result.
    assert.equal(await fx.jobs.ready(queue), 0, 'rejected, not requeued');
    assert.deepEqual(fx.results.forRun(bad1.run_id), []);
    assert.deepEqual(fx.results.forRun(bad2.run_id), []);
  });

  test("a job's environment has none of CronQ's settings, the four CRONQ_ run variables, and what CRONQ_JOB_ENV_PASS names", async () => {
    const scheduledFor = new Date(Date.now() - 1000).toISOString();
    const msg = {
      ...jobMessage({ command: 'env', name: 'env\u0000dump', jobId: 77 }),
      scheduled_for: scheduledFor,
      trigger: 'schedule',
    };
    await fx.jobs.publish(queue, msg);
    const fin = await fx.results.final(msg.run_id);
    assert.equal(fin.status, 'succeeded', fin.reason);
    const out = fin.output!;
    for (const secret of [DB_SECRET, TOKEN, 'msg-key-s3cr3t', 'hook-s3cr3t', 'rabbit-pass-s3cr3t'])
      assert.ok(!out.includes(secret), `${secret} leaked into the job's environment`);
    const env = envOf(out);
    for (const name of [
      'RABBITMQ_URL',
      'RABBITMQ_PASS',
      'DATABASE_URL',
      'CRONQ_MYSQL',
      'CRONQ_API_TOKEN',
      'CRONQ_SMTP_URL',
      'CRONQ_WEBHOOK_SECRET',
      'CRONQ_JOB_ENV_PASS',
      'CRONQ_JOB_LOG_MAX_BYTES',
      'CRONQ_LOG_LEVEL',
    ])
      assert.equal(env.has(name), false, `${name} is in the job's environment`);
    assert.equal(env.get('CRONQ_JOB_ID'), '77');
    assert.equal(env.get('CRONQ_RUN_ID'), msg.run_id);
    assert.equal(env.get('CRONQ_JOB_NAME'), 'envdump', 'NUL stripped from the name');
    assert.equal(env.get('CRONQ_SCHEDULED_FOR'), scheduledFor);
    // Allow-listed: a prefix glob and an exact name; other variables pass as before.
    assert.equal(env.get('CRONQ_APP_REGION'), 'eu-west-9');
    assert.equal(env.get('CRONQ_APP_TIER'), 'gold');
    assert.equal(env.get('LOG_PATH'), fx.logDir);
    assert.equal(env.get('PLAIN_VAR'), 'plain-value');
    assert.ok(env.has('PATH'));
  });

  test('a manual run without scheduled_for gets the time it started as CRONQ_SCHEDULED_FOR; a 300 KB name is bounded', async () => {
    const t0 = Date.now();
    const msg = jobMessage({
      command: 'echo "$CRONQ_SCHEDULED_FOR ${#CRONQ_JOB_NAME}"',
      name: 'n'.repeat(300_000),
    });
    await fx.jobs.publish(queue, msg);
    const fin = await fx.results.final(msg.run_id);
    assert.equal(fin.status, 'succeeded', fin.reason);
    const [when, len] = fin.output!.trim().split(' ');
    const t = Date.parse(when!);
    assert.ok(t >= t0 - 1000 && t <= Date.now(), `${when} is about now`);
    assert.equal(when, new Date(t).toISOString());
    // The job message parser bounds a name to the jobs.name column: 255 characters.
    assert.equal(len, '255');
  });

  test('job names that used to share a log file, or lose it, each get their own bounded, safe file', async () => {
    const names = [
      'a/b',
      'a b',
      'a-b',
      'a_b',
      '-',
      '..',
      '.',
      'job',
      '日本語',
      '中文',
      '--x--',
      'x'.repeat(300),
      '\u{1D518}'.repeat(255),
      '\u{1D518}'.repeat(254),
    ];
    const msgs = names.map((name, i) =>
      jobMessage({ command: `echo marker-${i}-end`, name, jobId: 500 + i }),
    );
    for (const m of msgs) await fx.jobs.publish(queue, m);
    for (const m of msgs) assert.equal((await fx.results.final(m.run_id)).status, 'succeeded');
    const holders = (i: number) =>
      readdirSync(fx.logDir).filter(
        (f) =>
          !f.startsWith('.') &&
          statSync(path.join(fx.logDir, f)).isFile() &&
          readFileSync(path.join(fx.logDir, f), 'utf8').includes(`marker-${i}-end`),
      );
    await waitFor(() => names.every((_, i) => holders(i).length > 0), {
      message: 'every run logged',
    });
    const files = names.map((_, i) => holders(i));
    files.forEach((f, i) => assert.equal(f.length, 1, `${names[i]} logged to ${f.join(', ')}`));
    const flat = files.map((f) => f[0]!);
    assert.equal(new Set(flat).size, names.length, `shared files: ${flat.join(' ')}`);
    for (const f of flat) {
      assert.ok(Buffer.byteLength(f) <= 255 - 2, f);
      assert.ok(!f.startsWith('-') && !f.startsWith('.'), f);
    }
    // Words separated by spaces keep SPEC.md's name.
    assert.equal(flat[names.indexOf('a b')], 'a-b.log');
    assert.equal(flat[names.indexOf('a_b')], 'a_b.log');
    assert.equal(flat[names.indexOf('job')], 'job.log');
  });

  test('a job log past CRONQ_JOB_LOG_MAX_BYTES is rotated, keeping .1 to .3 in order', async () => {
    const name = 'rotating';
    const msg = jobMessage({
      name,
      command:
        's=$(printf "%0300d" 0); i=0; while [ $i -lt 2000 ]; do echo "L$i $s"; i=$((i+1)); done',
    });
    await fx.jobs.publish(queue, msg);
    assert.equal((await fx.results.final(msg.run_id)).status, 'succeeded');
    const file = path.join(fx.logDir, `${name}.log`);
    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes(' L1999 '), {
      message: 'the last line in the current log',
    });
    assert.ok(existsSync(`${file}.1`) && existsSync(`${file}.2`) && existsSync(`${file}.3`));
    assert.equal(existsSync(`${file}.4`), false);
    const numbers = (f: string) =>
      [...readFileSync(f, 'utf8').matchAll(/ out L(\d+) /g)].map((m) => Number(m[1]));
    const seq = [`${file}.3`, `${file}.2`, `${file}.1`, file].flatMap(numbers);
    for (let i = 1; i < seq.length; i += 1) assert.equal(seq[i], seq[i - 1]! + 1, 'lines in order');
    assert.equal(seq.at(-1), 1999);
    // Each file stops at the limit, overshooting by at most the one write that crossed it.
    for (const f of [`${file}.1`, `${file}.2`, `${file}.3`])
      assert.ok(statSync(f).size <= 16384 + 128 * 1024, `${f}: ${statSync(f).size}`);
  });

  test("the runner's log carries no whole command, and a job whose log cannot be opened still runs", async () => {
    mkdirSync(path.join(fx.logDir, 'blocked.log'), { recursive: true });
    const big = jobMessage({ command: `: ${'q'.repeat(100_000)}; echo big`, name: 'big' });
    const blocked = jobMessage({ command: 'echo still-ran', name: 'blocked' });
    const after = jobMessage({ command: 'echo after' });
    await fx.jobs.publish(queue, big);
    await fx.jobs.publish(queue, blocked);
    await fx.jobs.publish(queue, after);
    assert.equal((await fx.results.final(big.run_id)).output, 'big\n');
    const b = await fx.results.final(blocked.run_id);
    assert.equal(b.status, 'succeeded');
    assert.equal(b.output, 'still-ran\n');
    assert.match(b.reason ?? '', /^job log not written: .*EISDIR/);
    assert.equal((await fx.results.final(after.run_id)).status, 'succeeded');
    await runner.waitForLine('cannot write the job log');
    const longest = Math.max(...runner.lines().map((l) => l.length));
    assert.ok(longest < 4096, `a runner log line of ${longest} characters`);
  });
});
