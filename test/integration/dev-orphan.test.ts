/**
 * The orphan guard `cronq dev` preloads into its daemons (src/dev/orphan-guard.ts):
 * a daemon whose `cronq dev` died without stopping it stops in its usual
 * order and exits, although everything it writes on the way out goes to
 * pipes nobody reads any more; while `cronq dev` lives, the guard changes
 * nothing. (test/integration/dev.test.ts does the same with the four real
 * daemons; this one shows the rule with a stand-in daemon that logs hard.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

/**
 * A stand-in daemon: logs with pino (asynchronous, flushed at exit) like the
 * real ones, and on SIGTERM writes a burst to stdout and stderr in every way
 * a daemon does, then marks that its stop ran to the end and exits 0.
 */
function writeDaemon(dir: string): string {
  const file = path.join(dir, 'daemon.js');
  writeFileSync(
    file,
    `const fs = require('node:fs');
const pino = require(${JSON.stringify(path.join(ROOT, 'node_modules', 'pino'))});
const log = pino(pino.destination({ fd: 1, sync: false, minLength: 4096 }));
log.info('started');
process.on('SIGTERM', () => {
  for (let i = 0; i < 200; i++) {
    log.info({ i }, 'stopping');
    process.stdout.write('plain line ' + i + '\\n');
    console.error('stderr line', i);
    fs.writeSync(1, 'sync line ' + i + '\\n');
  }
  fs.writeFileSync(process.argv[2], 'stopped in order');
  process.exit(0);
});
setInterval(() => log.info('working'), 20);
`,
  );
  return file;
}

/** Start a parent that spawns the daemon as `cronq dev` does (own group, pipes, IPC, the guard); return both. */
async function startUnderParent(
  dir: string,
  marker: string,
): Promise<{ parent: ReturnType<typeof spawn>; daemonPid: number }> {
  const daemon = writeDaemon(dir);
  const parentFile = path.join(dir, 'parent.js');
  writeFileSync(
    parentFile,
    `const { spawn } = require('node:child_process');
const c = spawn(process.execPath, ['--require', ${JSON.stringify(GUARD)}, ${JSON.stringify(daemon)}, ${JSON.stringify(marker)}], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true });
c.stdout.on('data', () => {});
c.stderr.on('data', () => {});
c.on('spawn', () => process.stdout.write(c.pid + '\\n'));
`,
  );
  const parent = spawn(process.execPath, [parentFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  parent.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const daemonPid = await waitFor(() => (/^\d+\n/.test(out) ? Number(out.trim()) : null), {
    message: 'the daemon pid',
  });
  return { parent, daemonPid };
}

test('a daemon whose cronq dev was SIGKILLed stops in its usual order and exits, though its pipes are broken', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cronq-orphan-'));
  const marker = path.join(dir, 'stopped');
  let daemonPid: number | undefined;
  try {
    const started = await startUnderParent(dir, marker);
    daemonPid = started.daemonPid;
    // Let it log for a while, so its pipes hold data when the reader dies.
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(isAlive(daemonPid), 'the daemon runs while its parent lives');
    started.parent.kill('SIGKILL');
    await new Promise((r) => started.parent.once('exit', r));
    // Generous: the daemon's own stop is instant; the bound is for a loaded machine.
    await waitFor(() => !isAlive(daemonPid!), {
      timeoutMs: 15_000,
      message: 'the orphaned daemon exits',
    });
    assert.ok(
      existsSync(marker),
      'its SIGTERM handler ran to the end (it was not killed by EPIPE)',
    );
  } finally {
    if (daemonPid !== undefined && isAlive(daemonPid)) process.kill(daemonPid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the guard alone keeps no process alive: a guarded script with nothing left to do exits 0', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cronq-orphan-'));
  try {
    const script = path.join(dir, 'done.js');
    writeFileSync(script, `console.log('done');\n`);
    const child = spawn(process.execPath, ['--require', GUARD, script], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    const exit = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(exit, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
