/**
 * The runner's launcher thread dying (a crash of the worker thread that
 * forks the job shells and owns their pipes), with real shells: the runs
 * it was holding are killed, process group and all, and reported as ended
 * by SIGKILL instead of hanging forever; the thread is restarted and the
 * next job runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { Launcher, launcherThread } from '../../src/runner/launcher';
import { JobProcess, type ProcessSpec } from '../../src/runner/job-process';
import { silentLogger } from '../../src/core/logger';
import { waitFor } from '../helpers/services';
import { pidAlive } from '../helpers/runner-harness';
import { readdirSync, readFileSync } from 'node:fs';

/** Pids of the processes in process group `pgid` that are not zombies (from /proc). */
function liveMembers(pgid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid pgrp ...; comm may hold spaces, so split after its ')'.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function spec(command: string, out: Buffer[] = []): ProcessSpec {
  return {
    command,
    env: {},
    timeoutMs: null,
    killGraceMs: 1000,
    onOutput: (_stream, chunk) => {
      out.push(chunk);
      return true;
    },
    drained: () => Promise.resolve(),
  };
}

test('when the launcher thread dies, its running jobs are killed and reported, and the next job runs on a new thread', async () => {
  const launcher = new Launcher(process.env, silentLogger());
  await launcher.start();
  try {
    // A job with a background child in its process group, so "killed" means the group.
    const running = new JobProcess(spec('sleep 30 & sleep 30'), launcher);
    running.start();
    running.go();
    await running.released;
    const pid = running.pid!;
    assert.ok(pidAlive(pid));
    await waitFor(() => liveMembers(pid).length >= 2, { message: 'both sleeps running' });

    // The thread dies as a crash would end it (the worker is private: reached for here only).
    const worker = (launcher as unknown as { worker: Worker }).worker;
    await worker.terminate();

    const outcome = await running.done;
    assert.equal(outcome.kind, 'exited');
    assert.equal(outcome.signal, 'SIGKILL');
    assert.match(outcome.error?.message ?? '', /launcher thread exited/);
    // Killed: nothing of the group runs on. (A dead thread's children are
    // never reaped, so they stay as zombies of this process: dead, not running.)
    await waitFor(() => liveMembers(pid).length === 0, {
      message: "the job's process group is gone",
    });

    // Restarted: the next job runs and its output comes through.
    const out: Buffer[] = [];
    const next = await waitFor(async () => {
      const p = new JobProcess(spec('echo after restart', out), launcher);
      p.start();
      p.go();
      const o = await p.done;
      return o.kind === 'exited' ? o : undefined;
    });
    assert.equal(next.returnCode, 0);
    assert.equal(Buffer.concat(out).toString(), 'after restart\n');
  } finally {
    await launcher.stop();
  }
});

test('a launcher thread that cannot start is restarted with a growing delay, not in a tight loop; jobs meanwhile end, none hangs', async () => {
  let starts = 0;
  const BROKEN = 5;
  const launcher = new Launcher(process.env, silentLogger(), (env) => {
    starts += 1;
    return starts <= BROKEN
      ? new Worker("throw new Error('broken install')", { eval: true, workerData: { env } })
      : launcherThread(env);
  });
  const t0 = Date.now();
  await launcher.start();
  try {
    // Jobs keep arriving while the thread is broken: each one runs or is
    // reported as ended, none waits forever.
    const outcomes: Array<Promise<unknown>> = [];
    const feeding = setInterval(() => {
      const p = new JobProcess(spec('true'), launcher);
      p.start();
      p.go();
      outcomes.push(p.done);
    }, 250);
    await waitFor(() => starts > BROKEN, { timeoutMs: 15_000, message: 'a working thread' });
    clearInterval(feeding);
    // 100 + 200 + 400 + 800 + 1600 ms of delays before the sixth start.
    assert.ok(Date.now() - t0 >= 3000, `restarted ${starts} times in ${Date.now() - t0} ms`);
    assert.equal(starts, BROKEN + 1);
    await Promise.all(outcomes);
    const out: Buffer[] = [];
    const ok = new JobProcess(spec('echo healthy', out), launcher);
    ok.start();
    ok.go();
    assert.equal((await ok.done).returnCode, 0);
    assert.equal(Buffer.concat(out).toString(), 'healthy\n');
  } finally {
    await launcher.stop();
  }
});
