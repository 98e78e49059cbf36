/**
 * The daemons' logger against a real pipe: JSON lines on stdout while a
 * reader is there, and no hang at exit once the reader has gone (a killed
 * `| tee` or log shipper): the exit flush used to retry EPIPE forever.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';

const FIXTURE = path.join(__dirname, '..', 'helpers', 'log-then-exit.ts');

test('logs JSON lines to stdout, and exits promptly after its stdout reader has gone', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const lines = createInterface({ input: child.stdout! });
    const [first] = (await once(lines, 'line')) as [string];
    const rec = JSON.parse(first) as Record<string, unknown>;
    assert.equal(rec.msg, 'ready');
    assert.equal(rec.component, 'logger-test');
    assert.equal(rec.level, 'info');

    // The reader goes away; the next lines can only fail with EPIPE.
    lines.close();
    child.stdout!.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    child.kill('SIGTERM');
    // A hang is forever; the bound only has to be longer than a loaded machine's slowest exit.
    const timeout = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000).unref());
    const outcome = await Promise.race([exited, timeout]);
    assert.notEqual(outcome, 'hung', 'the process did not exit within 15 s of SIGTERM');
    assert.deepEqual(outcome, [0, null]);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
