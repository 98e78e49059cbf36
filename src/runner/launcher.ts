import { existsSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { errorMessage, exponentialBackoff } from '../core/async';
import type { Logger } from '../core/logger';

/** Messages to the launcher thread. */
export type LauncherOp =
  | { op: 'spawn'; id: number; command: string; env: Record<string, string> }
  | { op: 'stdin'; id: number; data?: string }
  | { op: 'pause'; id: number }
  | { op: 'resume'; id: number };

/** Messages from the launcher thread; `at` is epoch ms with sub-millisecond precision. */
export type LauncherEvent =
  | { ev: 'spawned'; id: number; pid: number }
  | { ev: 'spawnError'; id: number; message: string }
  | { ev: 'data'; id: number; stream: 'out' | 'err'; bytes: Uint8Array }
  | { ev: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null; at: number }
  | { ev: 'closed'; id: number };

/** What a launched child reports back (see launcher-thread.ts). */
export interface ChildEvents {
  spawned(pid: number): void;
  spawnError(err: Error): void;
  data(stream: 'out' | 'err', chunk: Buffer): void;
  /** `at`: performance.now() of this thread at the exit. */
  exit(code: number | null, signal: NodeJS.Signals | null, at: number): void;
  /** Both pipes closed; nothing more will come. */
  closed(): void;
  /** The launcher thread died under it: the child's fate is unknown. */
  lost(err: Error): void;
}

/** One child, as the runner's thread sees it. */
export class LaunchedChild {
  constructor(
    private readonly launcher: Launcher,
    readonly id: number,
  ) {}
  /** Release the gated shell (`go`): its command runs from now on. */
  release(): void {
    this.launcher.send({ op: 'stdin', id: this.id, data: '\n' });
  }
  /** Close the gated shell's stdin without the go line: it exits having run nothing. */
  abandon(): void {
    this.launcher.send({ op: 'stdin', id: this.id });
  }
  pause(): void {
    this.launcher.send({ op: 'pause', id: this.id });
  }
  resume(): void {
    this.launcher.send({ op: 'resume', id: this.id });
  }
}

/**
 * The compiled thread, dist/runner/launcher-thread.js. Run from source (the
 * tests and benchmarks load src/ through tsx, whose hooks do not reach a
 * worker thread), this file finds the build of the same checkout instead,
 * so nothing here loads a TypeScript toolchain.
 */
export function launcherThread(env: NodeJS.ProcessEnv): Worker {
  const candidates = [
    path.join(__dirname, 'launcher-thread.js'),
    path.join(__dirname, '..', '..', 'dist', 'runner', 'launcher-thread.js'),
  ];
  const js = candidates.find((f) => existsSync(f));
  if (!js)
    throw new Error(
      `the process launcher thread is not built (looked for ${candidates.join(', ')}): run npm run build`,
    );
  return new Worker(js, { workerData: { env } });
}

/**
 * Restart delays after the thread died: doubling from 100 ms to 5 s, back to
 * 100 ms once a thread has lived 10 s. Without jitter: one thread of one
 * process, with no crowd of clients to spread out.
 */
const RESTART_BACKOFF = exponentialBackoff(100, 5000, () => 1);
const STABLE_MS = 10_000;

/**
 * Forks job shells on a worker thread. Node forks and execs a child on the
 * calling thread, synchronously (about a millisecond each on a small VM).
 * On the runner's event loop that millisecond would delay every other run's
 * acks, results and exits; on this thread it overlaps with them, and the
 * thread's exits reach the runner in one message per turn. Measured in the
 * end-to-end burst (two runners of 16 on two cores) against forking ahead
 * on the event loop, the thread used less CPU per run and ran more runs
 * per second (docs/runner.md has the figures). One thread: each extra V8
 * isolate makes every fork of the process dearer, and two measured slower
 * than one. Signals are still sent from the runner's thread (kill of the
 * process group).
 */
export class Launcher {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly children = new Map<number, ChildEvents>();
  private stopped = false;
  private ops: LauncherOp[] = [];
  /** Set while a dead thread waits for its restart: ops are kept for the new one meanwhile. */
  private restartTimer: NodeJS.Timeout | undefined;
  private restarts = 0;
  private startedAt = 0;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly logger: Logger,
    /** Makes the thread; tests pass one that fails to start, to see the restarts back off. */
    private readonly makeThread: (env: NodeJS.ProcessEnv) => Worker = launcherThread,
  ) {}

  async start(): Promise<void> {
    const worker = this.makeThread(this.env);
    this.worker = worker;
    this.startedAt = Date.now();
    worker.on('message', (evs: LauncherEvent[]) => {
      for (const ev of evs) this.onEvent(ev);
    });
    worker.on('error', (err) =>
      this.logger.error({ err: err.message }, 'the process launcher thread failed'),
    );
    worker.on('exit', (code) => this.onExit(worker, code));
    await new Promise<void>((resolve, reject) => {
      worker.once('online', resolve);
      worker.once('error', reject);
    });
    if (this.ops.length > 0) queueMicrotask(() => this.flush());
  }

  /** Fork `/bin/sh` for `command` (gated: see launcher-thread.ts) with the base environment plus `env`. */
  launch(command: string, env: Record<string, string>, events: ChildEvents): LaunchedChild {
    const id = this.nextId++;
    if (!this.worker && !this.restartTimer) {
      queueMicrotask(() => events.spawnError(new Error('the process launcher is not running')));
    } else {
      this.children.set(id, events);
      this.send({ op: 'spawn', id, command, env });
    }
    return new LaunchedChild(this, id);
  }

  /** Ops go out in one message per task of the runner (the starts of a burst of exits are one wake-up of the thread). */
  send(op: LauncherOp): void {
    if (!this.worker && !this.restartTimer) return;
    if (this.ops.length === 0 && this.worker) queueMicrotask(() => this.flush());
    this.ops.push(op);
  }

  private flush(): void {
    if (!this.worker || this.ops.length === 0) return;
    const ops = this.ops;
    this.ops = [];
    this.worker.postMessage(ops);
  }

  private onEvent(ev: LauncherEvent): void {
    const c = this.children.get(ev.id);
    if (!c) return;
    switch (ev.ev) {
      case 'spawned':
        return c.spawned(ev.pid);
      case 'spawnError':
        this.children.delete(ev.id);
        return c.spawnError(new Error(ev.message));
      case 'data':
        return c.data(
          ev.stream,
          Buffer.from(ev.bytes.buffer, ev.bytes.byteOffset, ev.bytes.length),
        );
      case 'exit':
        return c.exit(ev.code, ev.signal, ev.at - performance.timeOrigin);
      case 'closed':
        this.children.delete(ev.id);
        return c.closed();
    }
  }

  private onExit(worker: Worker, code: number): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    const orphans = [...this.children.values()];
    this.children.clear();
    if (this.stopped) return;
    const err = new Error(`the process launcher thread exited (code ${code})`);
    this.logger.error(
      { err: err.message, running: orphans.length },
      'restarting the process launcher thread',
    );
    // Unsent ops belong to the children just reported lost; launches from
    // now on wait for the new thread.
    this.ops = [];
    for (const c of orphans) c.lost(err);
    // With a backoff: a thread that cannot start (a broken install) must not
    // be restarted in a tight loop. Jobs launched meanwhile wait for it.
    if (Date.now() - this.startedAt >= STABLE_MS) this.restarts = 0;
    const delay = RESTART_BACKOFF.delay(this.restarts);
    this.restarts += 1;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.start().catch((e: unknown) =>
        this.logger.error(
          { err: errorMessage(e) },
          'could not restart the process launcher thread',
        ),
      );
    }, delay);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
