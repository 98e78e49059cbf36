/**
 * The orphan guard `cronq dev` preloads into its daemons: when the parent
 * dies, a child that logs with pino (asynchronous, flushed at exit) still
 * exits. Without the guard, pino's exit flush retries the write to the
 * broken pipe forever and the process never ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from '../helpers/services';
import { ROOT } from '../helpers/processes';

const GUARD = path.join(ROOT, 'dist', 'dev', 'orphan-guard.js');

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Start parent -> child (with or without the guard), kill the parent, return the child's pid. */
async function orphan(dir: string, guard: boolean): Promise<number> {
  const child = path.join(dir, 'child.js');
  writeFileSync(
    child,
    `const pino = require(${JSON.stringify(path.join(ROOT, 'node_modules', 'pino'))});
const log = pino(pino.destination({ fd: 1, sync: false, minLength: 4096 }));
log.info('started');
process.on('SIGTERM', () => { for (let i = 0; i < 50; i++) log.info({ i }, 'stopping'); process.exit(0); });
setInterval(() => {}, 1000);
`,
  );
  const parent = path.join(dir, 'parent.js');
  writeFileSync(
    parent,
    `const { spawn } = require('node:child_process');
const c = spawn(process.execPath, ${JSON.stringify(guard ? ['--require', GUARD, child] : [child])}, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true });
c.stdout.on('data', () => {});
c.on('spawn', () => process.stdout.write(c.pid + '\\n'));
`,
  );
  const p = spawn(process.execPath, [parent], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const pid = await waitFor(() => (/^\d+\n/.test(out) ? Number(out.trim()) : null), {
    message: 'child pid',
  });
  await new Promise((r) => setTimeout(r, 500)); // let the child start logging
  p.kill('SIGKILL');
  await new Promise((r) => p.once('exit', r));
  return pid;
}

test('a daemon whose cronq dev was SIGKILLed stops by itself and exits, its logs dropped', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cronq-orphan-'));
  const pids: number[] = [];
  try {
    const guarded = await orphan(dir, true);
    pids.push(guarded);
    await waitFor(() => !isAlive(guarded), {
      timeoutMs: 10_000,
      message: 'the guarded child exits',
    });

    // The control: the same child without the guard, told to stop, never exits.
    const bare = await orphan(dir, false);
    pids.push(bare);
    process.kill(bare, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(
      isAlive(bare),
      true,
      'without the guard the exit flush spins on EPIPE (if this fails, pino fixed it and the guard is merely harmless)',
    );
  } finally {
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
