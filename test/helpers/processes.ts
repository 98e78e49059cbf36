/**
 * Spawn CronQ's real commands (bin/cronq-*) as child processes, collect what
 * they print, and make sure none outlives its test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { streamEnded } from '../../src/core/streams';

export const ROOT = path.resolve(__dirname, '..', '..');

export interface Proc {
  child: ChildProcess;
  /** Everything printed so far, stdout and stderr interleaved by line. */
  output(): string;
  lines(): string[];
  /** Wait until a line matches (string = substring). */
  waitForLine(match: RegExp | string, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or 128+signal) when the process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** This process's environment without CronQ's and the services' variables, so each test decides them. */
export function cleanEnv(): Record<string, string> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (/^(CRONQ_|RABBITMQ_|DATABASE_URL$|LOG_PATH$|PORT$|LISTEN_INTERFACE$)/.test(k)) continue;
    base[k] = v;
  }
  return base;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Start `bin/<command>` (e.g. `cronq-injector`) with the given environment
 * added to a clean copy of this process's (CRONQ_* and service variables of
 * the outer shell are dropped so the test decides).
 */
export function startCommand(
  command: string,
  opts: { env?: Record<string, string>; args?: string[]; cwd?: string; detached?: boolean } = {},
): Proc {
  const base = cleanEnv();
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', command), ...(opts.args ?? [])], {
    cwd: opts.cwd ?? ROOT,
    env: { ...base, CRONQ_LOG_LEVEL: 'debug', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  live.add(child);
  const collected: string[] = [];
  const listeners = new Set<() => void>();
  let partial = { out: '', err: '' };
  const onData = (key: 'out' | 'err') => (chunk: Buffer) => {
    const text = partial[key] + chunk.toString('utf8');
    const parts = text.split('\n');
    partial[key] = parts.pop() ?? '';
    collected.push(...parts);
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData('out'));
  child.stderr!.on('data', onData('err'));
  // Set once the process has exited AND its last output has been read:
  // 'exit' can come before the final lines written at exit arrive on the pipes.
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      // Bounded: a grandchild that inherited the pipes could hold them open.
      const bound = new Promise<void>((r) => setTimeout(r, 2000).unref());
      void Promise.race([
        Promise.all([streamEnded(child.stdout!), streamEnded(child.stderr!)]),
        bound,
      ]).then(() => {
        if (partial.out) collected.push(partial.out);
        if (partial.err) collected.push(partial.err);
        partial = { out: '', err: '' };
        done = true;
        for (const l of listeners) l();
        resolve({ code, signal });
      });
    });
  });
  const proc: Proc = {
    child,
    output: () => collected.join('\n'),
    lines: () => [...collected],
    waitForLine(match, timeoutMs = 15_000) {
      const test = (l: string) => (typeof match === 'string' ? l.includes(match) : match.test(l));
      return new Promise((resolve, reject) => {
        const found = collected.find(test);
        if (found !== undefined) return resolve(found);
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(
              `no line matching ${String(match)} from ${command} within ${timeoutMs} ms; output:\n${collected.slice(-40).join('\n')}`,
            ),
          );
        }, timeoutMs);
        function check() {
          const line = collected.find(test);
          if (line !== undefined) {
            clearTimeout(timer);
            listeners.delete(check);
            resolve(line);
          } else if (done) {
            clearTimeout(timer);
            listeners.delete(check);
            reject(
              new Error(
                `${command} exited before printing ${String(match)}; output:\n${collected.slice(-40).join('\n')}`,
              ),
            );
          }
        }
        listeners.add(check);
      });
    },
    exited,
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
  return proc;
}

/** Run a command to completion and return its exit code and output. */
export async function runCommand(
  command: string,
  opts: { env?: Record<string, string>; args?: string[]; cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base = cleanEnv();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', command), ...(opts.args ?? [])], {
      cwd: opts.cwd ?? ROOT,
      env: { ...base, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${command} ${opts.args?.join(' ') ?? ''} did not finish within ${opts.timeoutMs ?? 30_000} ms`,
        ),
      );
    }, opts.timeoutMs ?? 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
