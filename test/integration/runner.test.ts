import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { queueCounts, rabbitmqctl, uniqueName, waitFor } from '../helpers/services';
import { runCommand, type Proc } from '../helpers/processes';
import { useRunnerFixture, jobMessage, pidAlive } from '../helpers/runner-harness';

const fx = useRunnerFixture({ CRONQ_HOSTNAME: 'runner-test.example.com' });

describe('cronq-runner', () => {
  let queue: string;
  let runner: Proc;
  before(async () => {
    queue = uniqueName('q');
    runner = await fx.startRunner(queue, { CRONQ_HEARTBEAT_SECONDS: '0.3' });
  });

  test('a command that exits 0 is reported as starting then finished/succeeded, with the CRONQ_* environment', async () => {
    const msg = jobMessage({
      command: 'echo "id=$CRONQ_JOB_ID run=$CRONQ_RUN_ID name=$CRONQ_JOB_NAME"',
      name: 'env check',
      jobId: 42,
    });
    await fx.jobs.publish(queue, msg);
    const fin = await fx.results.final(msg.run_id);
    const starting = fx.results.forRun(msg.run_id, 'starting');
    assert.equal(starting.length, 1);
    assert.ok(
      fx.results.results.indexOf(starting[0]!) < fx.results.results.indexOf(fin),
      'starting comes before finished',
    );
    assert.equal(fin.type, 'finished');
    assert.equal(fin.status, 'succeeded');
    assert.equal(fin.return_code, 0);
    assert.equal(fin.job_id, 42);
    assert.equal(fin['x-host'], 'runner-test.example.com');
    assert.ok(typeof fin.run_time === 'number' && fin.run_time >= 0);
    assert.ok(
      !Number.isNaN(Date.parse(fin['x-send-datetime'])) &&
        !Number.isNaN(Date.parse(fin.start_time!)),
    );
    assert.equal(fin.output, `id=42 run=${msg.run_id} name=env check\n`);
    const logged = readFileSync(path.join(fx.logDir, 'env-check.log'), 'utf8');
    assert.match(logged, new RegExp(`${msg.run_id} out id=42 run=${msg.run_id} name=env check\\n`));
  });

  test('a job that prints nothing leaves no empty job log; its first line creates the file', async () => {
    const name = `quiet ${Date.now()}`;
    const file = path.join(fx.logDir, `${name.replace(/\W+/g, '-')}.log`);
    const quiet = jobMessage({ command: 'true', name });
    await fx.jobs.publish(queue, quiet);
    assert.equal((await fx.results.final(quiet.run_id)).status, 'succeeded');
    assert.equal(existsSync(file), false, 'no file for a run without output');
    const loud = jobMessage({ command: 'echo now', name });
    await fx.jobs.publish(queue, loud);
    await fx.results.final(loud.run_id);
    await waitFor(
      () => existsSync(file) && readFileSync(file, 'utf8').includes(`${loud.run_id} out now`),
      {
        message: 'the line in the job log',
      },
    );
  });

  test("both job message spellings run: the README's {id, command} and the original runners' {job_id, cmd}", async () => {
    const readme = {
      run_id: jobMessage({ command: 'x' }).run_id,
      id: 5,
      name: 'readme form',
      command: 'echo readme',
    };
    const original = {
      run_id: jobMessage({ command: 'x' }).run_id,
      job_id: 6,
      name: 'original form',
      cmd: 'echo original',
    };
    await fx.jobs.publish(queue, readme);
    await fx.jobs.publish(queue, original);
    const [a, b] = await Promise.all([
      fx.results.final(readme.run_id),
      fx.results.final(original.run_id),
    ]);
    assert.equal(a.job_id, 5);
    assert.equal(a.output, 'readme\n');
    assert.equal(b.job_id, 6);
    assert.equal(b.output, 'original\n');
  });

  test('the command sees what sh -c would give it: $0 is /bin/sh, no arguments, stdin at end of file', async () => {
    const msg = jobMessage({ command: 'echo "[$0] [$#] [$1]"; cat; echo "stdin done"' });
    await fx.jobs.publish(queue, msg);
    const fin = await fx.results.final(msg.run_id);
    assert.equal(fin.status, 'succeeded');
    assert.equal(fin.output, '[/bin/sh] [0] []\nstdin done\n');
  });

  test('a non-zero exit is finished with status failed and its return code', async () => {
    const msg = jobMessage({ command: 'echo boom >&2; exit 3' });
    await fx.jobs.publish(queue, msg);
    const fin = await fx.results.final(msg.run_id);
    assert.equal(fin.type, 'finished');
    assert.equal(fin.status, 'failed');
    assert.equal(fin.return_code, 3);
    assert.equal(fin.output, 'boom\n');
  });

  test('a command the shell cannot find is finished with return code 127 (the shell itself started)', async () => {
    const msg = jobMessage({ command: 'no-such-command-cronq-test' });
    await fx.jobs.publish(queue, msg);
    const fin = await fx.results.final(msg.run_id);
    assert.equal(fin.type, 'finished');
    assert.equal(fin.return_code, 127);
    assert.equal(fin.status, 'failed');
    assert.match(fin.output!, /not found/);
  });

  test('a command the kernel refuses to execute (over the 128 KiB argument limit: E2BIG) is reported as failed: could not start', async () => {
    const msg = jobMessage({ command: `: ${'x'.repeat(200_000)}` });
    await fx.jobs.publish(queue, msg);
    const fin = await fx.results.final(msg.run_id);
    assert.equal(fin.type, 'failed');
    assert.equal(fin.return_code, null);
    assert.match(fin.reason!, /could not start: .*E2BIG/);
    assert.equal(fx.results.forRun(msg.run_id, 'starting').length, 1);
  });

  test('a scheduled run published ahead of its occurrence starts at the occurrence, and does not hold up a run that is due now', async () => {
    const due = Date.now() + 1500;
    const early = {
      ...jobMessage({ command: 'true', name: 'early' }),
      scheduled_for: new Date(due).toISOString(),
      trigger: 'schedule',
    };
    const now = jobMessage({ command: 'true', name: 'due now' });
    await fx.jobs.publish(queue, early);
    await fx.jobs.publish(queue, now);
    const nowFin = await fx.results.final(now.run_id);
    const earlyFin = await fx.results.final(early.run_id);
    const started = Date.parse(earlyFin.start_time!);
    assert.ok(started >= due, `started ${started - due} ms before its occurrence`);
    // The rule is "not before"; this bound only catches a hold far past the
    // occurrence (a due timer that never fired), with room for a loaded machine.
    assert.ok(started - due < 2000, `started ${started - due} ms after its occurrence`);
    // The held delivery took no slot (concurrency 1): the other run went first.
    assert.ok(Date.parse(nowFin.start_time!) < due);
  });

  test('a run published far ahead (a clock behind the injector) is held at most 5 s; a manual run is never held', async () => {
    const farAhead = {
      ...jobMessage({ command: 'true', name: 'far ahead' }),
      scheduled_for: new Date(Date.now() + 3_600_000).toISOString(),
      trigger: 'schedule',
    };
    const manual = {
      ...jobMessage({ command: 'true', name: 'manual ahead' }),
      scheduled_for: new Date(Date.now() + 3_600_000).toISOString(),
      trigger: 'manual',
    };
    const sent = Date.now();
    await fx.jobs.publish(queue, farAhead);
    await fx.jobs.publish(queue, manual);
    const manualFin = await fx.results.final(manual.run_id);
    // Not held: well under the 5 s a held run waits, with room for a loaded machine.
    assert.ok(Date.parse(manualFin.start_time!) - sent < 4000, 'the manual run waited');
    const farFin = await fx.results.final(farAhead.run_id);
    const held = Date.parse(farFin.start_time!) - sent;
    // Held about MAX_LEAD_MS (5 s) from its arrival, not an hour; the upper bound is generous for load.
    assert.ok(held >= 4500 && held < 15_000, `held ${held} ms`);
  });

  test('a poison message is rejected without requeue, logged once, and the next good message runs', async () => {
    const before = runner
      .lines()
      .filter((l) => l.includes('rejecting a malformed job message')).length;
    await fx.jobs.publish(queue, 'this is not json');
    await fx.jobs.publish(queue, { job_id: 7, cmd: 'true' }); // no run id
    const good = jobMessage({ command: 'echo fine' });
    await fx.jobs.publish(queue, good);
    const fin = await fx.results.final(good.run_id);
    assert.equal(fin.status, 'succeeded');
    await waitFor(
      () =>
        runner.lines().filter((l) => l.includes('rejecting a malformed job message')).length -
          before ===
        2,
      { message: 'two rejections logged' },
    );
    assert.equal(await fx.jobs.ready(queue), 0, 'rejected messages are not requeued');
    assert.equal(
      runner.lines().filter((l) => l.includes('rejecting a malformed job message')).length - before,
      2,
    );
  });

  test('the same run_id delivered twice runs once', async () => {
    const marker = path.join(fx.logDir, `dup-${Date.now()}`);
    const msg = jobMessage({ command: `echo ran >> ${marker}` });
    await fx.jobs.publish(queue, msg);
    await fx.results.final(msg.run_id);
    await fx.jobs.publish(queue, msg);
    // Acked (not requeued, not left unacked), without a second run.
    await waitFor(
      async () => {
        const c = await queueCounts(fx.vhost.vhost, queue);
        return c.messages === 0 && c.unacked === 0;
      },
      { message: 'the duplicate acked' },
    );
    assert.equal(readFileSync(marker, 'utf8'), 'ran\n');
    assert.equal(fx.results.forRun(msg.run_id, 'starting').length, 1);
    assert.equal(fx.results.forRun(msg.run_id, 'finished').length, 1);
  });

  test('heartbeats arrive for a running job', async () => {
    const msg = jobMessage({ command: 'sleep 1.5' });
    await fx.jobs.publish(queue, msg);
    await fx.results.final(msg.run_id);
    const beats = fx.results.forRun(msg.run_id, 'heartbeat');
    assert.ok(beats.length >= 2, `expected at least 2 heartbeats, got ${beats.length}`);
    assert.equal(beats[0]!['x-host'], 'runner-test.example.com');
  });

  test('a timeout terminates the whole process group, a background child of the shell included', async () => {
    const pidFile = path.join(fx.logDir, `bg-${Date.now()}.pid`);
    const msg = jobMessage({ command: `sleep 300 & echo $! > ${pidFile}; wait`, timeout: 1 });
    await fx.jobs.publish(queue, msg);
    const fin = await fx.results.final(msg.run_id);
    assert.equal(fin.status, 'timed_out');
    assert.match(fin.reason!, /timed out after 1 s/);
    // About the 1 s timeout, not the 300 s sleep; the upper bound leaves room for load.
    assert.ok(fin.run_time! >= 0.9 && fin.run_time! < 5, `run_time ${fin.run_time}`);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(pid > 0);
    await waitFor(() => !pidAlive(pid), {
      timeoutMs: 3000,
      message: `background sleep ${pid} is gone`,
    });
  });

  test('a background child that keeps the output pipe open does not keep the run going after the shell exits', async () => {
    const pidFile = path.join(fx.logDir, `daemon-${Date.now()}.pid`);
    const msg = jobMessage({ command: `sleep 30 & echo $! > ${pidFile}; echo bye` });
    const t0 = Date.now();
    await fx.jobs.publish(queue, msg);
    const fin = await fx.results.final(msg.run_id);
    // The pipes linger 200 ms after the shell, not the 30 s of the background sleep.
    assert.ok(Date.now() - t0 < 15_000, `ended ${Date.now() - t0} ms after publishing`);
    assert.equal(fin.status, 'succeeded');
    assert.equal(fin.output, 'bye\n');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(pidAlive(pid), 'a job that ended normally leaves its background children alone');
    process.kill(pid, 'SIGKILL');
  });

  test('a job that ignores SIGTERM is killed with SIGKILL after the grace', async () => {
    const q = uniqueName('q');
    await fx.startRunner(q, { CRONQ_KILL_GRACE_SECONDS: '0.5' });
    const pidFile = path.join(fx.logDir, `trap-${Date.now()}.pid`);
    const msg = jobMessage({
      command: `trap '' TERM; sleep 300 & echo $! > ${pidFile}; wait`,
      timeout: 0.5,
    });
    await fx.jobs.publish(q, msg);
    const fin = await fx.results.final(msg.run_id);
    assert.equal(fin.status, 'timed_out');
    assert.match(fin.reason!, /SIGKILL/);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(() => !pidAlive(pid), {
      timeoutMs: 3000,
      message: `sleep ${pid} ignoring SIGTERM is gone`,
    });
  });

  test('concurrency 3 runs three jobs at the same time', async () => {
    const q = uniqueName('q');
    await fx.startRunner(q, {}, ['--concurrency', '3']);
    const msgs = [1, 2, 3].map((i) =>
      jobMessage({
        command: 'echo "start $(date +%s%N)"; sleep 1; echo "end $(date +%s%N)"',
        jobId: i,
      }),
    );
    for (const m of msgs) await fx.jobs.publish(q, m);
    const fins = await Promise.all(msgs.map((m) => fx.results.final(m.run_id)));
    const starts = fins.map((f) => Number(/start (\d+)/.exec(f.output!)![1]));
    const ends = fins.map((f) => Number(/end (\d+)/.exec(f.output!)![1]));
    assert.ok(Math.max(...starts) < Math.min(...ends), 'every job started before any ended');
  });

  test('the broker closing the runner connection mid-job: the runner reconnects, the finished result arrives, the next job runs', async () => {
    const q = uniqueName('q');
    const p = await fx.startRunner(q);
    const msg = jobMessage({ command: 'sleep 1.5; echo after the cut' });
    await fx.jobs.publish(q, msg);
    await waitFor(() => fx.results.forRun(msg.run_id, 'starting').length === 1, {
      message: 'job started',
    });
    // Only this runner's connection in this test's vhost: not disruptive for anyone else.
    const rows = (
      await rabbitmqctl('list_connections', '-q', 'pid', 'vhost', 'client_properties')
    ).split('\n');
    const row = rows.find(
      (r) =>
        r.includes(`\t${fx.vhost.vhost}\t`) &&
        r.includes(`cronq-runner runner-test.example.com.${p.child.pid}"`),
    );
    assert.ok(row, 'runner connection found');
    await rabbitmqctl('close_connection', row.split('\t')[0]!, 'test cut');
    const fin = await fx.results.final(msg.run_id, 20_000);
    assert.equal(fin.output, 'after the cut\n');
    assert.equal(fx.results.forRun(msg.run_id, 'finished').length, 1);
    // Consuming again after the reconnect: the next job runs.
    const next = jobMessage({ command: 'echo next' });
    await fx.jobs.publish(q, next);
    assert.equal((await fx.results.final(next.run_id)).status, 'succeeded');
  });

  test('a job is not held by a busy runner: an idle runner on the same queue runs it, and the shells the busy one forked for it ran nothing', async () => {
    const q = uniqueName('q');
    await fx.startRunner(q, { CRONQ_HOSTNAME: 'busy.example.com' });
    const long = jobMessage({ command: 'sleep 6' });
    await fx.jobs.publish(q, long);
    await waitFor(() => fx.results.forRun(long.run_id, 'starting').length === 1, {
      message: 'long job started',
    });
    await fx.startRunner(q, { CRONQ_HOSTNAME: 'idle.example.com' });
    // The busy runner takes these first (its prefetch has room beyond its one
    // slot) and forks a gated shell for each; after 2 s it gives them back.
    const marker = path.join(fx.logDir, `held-${Date.now()}`);
    const next = ['a', 'b'].map((x) => jobMessage({ command: `echo ${x} >> ${marker}` }));
    for (const m of next) await fx.jobs.publish(q, m);
    const fins = await Promise.all(next.map((m) => fx.results.final(m.run_id, 10_000)));
    // Before the long job (6 s) ended: the busy runner held neither of them.
    assert.equal(
      fx.results.forRun(long.run_id, 'finished').length,
      0,
      'both ran before the long job ended',
    );
    for (const f of fins) assert.equal(f['x-host'], 'idle.example.com');
    for (const m of next) assert.equal(fx.results.forRun(m.run_id, 'starting').length, 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(readFileSync(marker, 'utf8').split('\n').filter(Boolean).sort(), ['a', 'b']);
    assert.equal(fx.results.forRun(long.run_id, 'finished').length, 0);
  });

  test('--help lists the flags; a bad --concurrency exits 2 with one line naming the setting', async () => {
    const help = await runCommand('cronq-runner', { args: ['--help'] });
    assert.equal(help.code, 0);
    for (const flag of ['--queue', '--concurrency', '--verbose', '--log-level'])
      assert.ok(help.stdout.includes(flag), flag);
    const bad = await runCommand('cronq-runner', {
      args: ['--concurrency', '0'],
      env: { RABBITMQ_URL: fx.vhost.url },
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr.trim(), /^cronq-runner: CRONQ_CONCURRENCY="0" is not valid/);
  });

  test('a LOG_PATH that cannot be written falls back to the temp folder with one warning', async () => {
    const q = uniqueName('q');
    const p = await fx.startRunner(q, {
      LOG_PATH: '/etc/hostname/cronq-logs' /* under a file: ENOTDIR even for root */,
    });
    assert.equal(p.lines().filter((l) => l.includes('LOG_PATH is not writable')).length, 1);
    const msg = jobMessage({ command: 'echo fell back', name: `fallback ${q}` });
    await fx.jobs.publish(q, msg);
    await fx.results.final(msg.run_id);
    const file = path.join(os.tmpdir(), 'cronq', `fallback-${q}.log`);
    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('fell back'), {
      message: 'job log in the temp folder',
    });
  });
});
