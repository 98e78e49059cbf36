/**
 * Helpers that stop a disruptive test (one that restarts the broker) from
 * starting in the middle of a measurement: they take
 * /tmp/cronq-disruptive.lock with `flock -x`, so holding it shared here makes
 * them wait until the system being measured is done (and makes us wait for
 * one already running). Each system's measurement holds it, not the whole run.
 */
import { spawn } from 'node:child_process';

const LOCK = process.env.BENCH_DISRUPTIVE_LOCK ?? '/tmp/cronq-disruptive.lock';

export async function holdSharedLock(timeoutMs = 600_000): Promise<() => void> {
  if (process.env.BENCH_NO_LOCK === '1') return () => undefined;
  const child = spawn(
    'flock',
    [
      '--shared',
      '--timeout',
      String(Math.ceil(timeoutMs / 1000)),
      LOCK,
      'sh',
      '-c',
      'echo locked; exec cat',
    ],
    {
      stdio: ['pipe', 'pipe', 'ignore'],
    },
  );
  const release = () => {
    child.stdin?.end();
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    child.stdout!.once('data', done);
    // No flock binary, or the timeout passed: measure anyway rather than hang.
    child.once('exit', done);
    child.once('error', done);
  });
  return release;
}
