import { existsSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
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
    private readonly thread: LauncherThread,
    readonly id: number,
  ) {}
  /** Release the gated shell (`go`): its command runs from now on. */
  release(): void {
    this.thread.release(this.id);
  }
  /** Close the gated shell's stdin without the go line: it exits having run nothing. */
  abandon(): void {
    this.thread.send({ op: 'stdin', id: this.id });
  }
  pause(): void {
    this.thread.send({ op: 'pause', id: this.id });
  }
  resume(): void {
    this.thread.send({ op: 'resume', id: this.id });
  }
}

function threadFile(): string {
  // dist/runner/launcher-thread.js next to this file; the .ts source when run through tsx.
  const js = path.join(__dirname, 'launcher-thread.js');
  return existsSync(js) ? js : path.join(__dirname, 'launcher-thread.ts');
}

/**
 * Forks job shells on worker threads. Node forks and execs a child on the
 * calling thread, synchronously (about a millisecond each on a small VM),
 * and a thread notices its children's exits only between such forks. On
 * the runner's event loop that millisecond would delay every other run's
 * results, acks and exits; with two launcher threads taking turns, one
 * forks the next shell while the other sees the last one exit. Signals are
 * still sent from the runner's thread (kill of the process group).
 */
export class Launcher {
  private readonly threads: LauncherThread[];
  private turn = 0;

  constructor(env: NodeJS.ProcessEnv, logger: Logger, threads = 2) {
    this.threads = Array.from({ length: threads }, () => new LauncherThread(env, logger));
  }

  async start(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.start()));
  }

  /** Fork `/bin/sh` for `command` (gated: see launcher-thread.ts) with the base environment plus `env`. */
  launch(command: string, env: Record<string, string>, events: ChildEvents): LaunchedChild {
    return this.pick().launch(command, env, events);
  }

  /**
   * The thread with the fewest released commands running (its next fork
   * would delay noticing their exits), then the fewest forks queued; ties
   * take turns.
   */
  private pick(): LauncherThread {
    const n = this.threads.length;
    let best = this.threads[this.turn++ % n]!;
    for (let i = 0; i < n; i++) {
      const t = this.threads[(this.turn + i) % n]!;
      if (t.running < best.running || (t.running === best.running && t.forking < best.forking))
        best = t;
    }
    return best;
  }

  async stop(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.stop()));
  }
}

/** One worker thread running launcher-thread.ts, and the children it owns. */
class LauncherThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly children = new Map<number, ChildEvents>();
  private readonly releasedIds = new Set<number>();
  private stopped = false;
  /** Forks asked for and not yet reported. */
  forking = 0;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    const worker = new Worker(threadFile(), { workerData: { env: this.env } });
    this.worker = worker;
    worker.on('message', (ev: LauncherEvent) => this.onEvent(ev));
    worker.on('error', (err) =>
      this.logger.error({ err: err.message }, 'a process launcher thread failed'),
    );
    worker.on('exit', (code) => this.onExit(worker, code));
    await new Promise<void>((resolve, reject) => {
      worker.once('online', resolve);
      worker.once('error', reject);
    });
  }

  launch(command: string, env: Record<string, string>, events: ChildEvents): LaunchedChild {
    const id = this.nextId++;
    if (!this.worker) {
      queueMicrotask(() => events.spawnError(new Error('the process launcher is not running')));
    } else {
      this.children.set(id, events);
      this.forking += 1;
      this.send({ op: 'spawn', id, command, env });
    }
    return new LaunchedChild(this, id);
  }

  send(op: LauncherOp): void {
    this.worker?.postMessage(op);
  }

  /** Released commands that have not exited yet. */
  get running(): number {
    return this.releasedIds.size;
  }

  release(id: number): void {
    if (this.children.has(id)) this.releasedIds.add(id);
    this.send({ op: 'stdin', id, data: '\n' });
  }

  private onEvent(ev: LauncherEvent): void {
    const c = this.children.get(ev.id);
    if (!c) return;
    switch (ev.ev) {
      case 'spawned':
        this.forking -= 1;
        return c.spawned(ev.pid);
      case 'spawnError':
        this.forking -= 1;
        this.forget(ev.id);
        return c.spawnError(new Error(ev.message));
      case 'data':
        return c.data(
          ev.stream,
          Buffer.from(ev.bytes.buffer, ev.bytes.byteOffset, ev.bytes.length),
        );
      case 'exit':
        this.releasedIds.delete(ev.id);
        return c.exit(ev.code, ev.signal, ev.at - performance.timeOrigin);
      case 'closed':
        this.forget(ev.id);
        return c.closed();
    }
  }

  private forget(id: number): void {
    this.children.delete(id);
    this.releasedIds.delete(id);
  }

  private onExit(worker: Worker, code: number): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    const orphans = [...this.children.values()];
    this.children.clear();
    this.releasedIds.clear();
    this.forking = 0;
    if (this.stopped) return;
    const err = new Error(`a process launcher thread exited (code ${code})`);
    this.logger.error(
      { err: err.message, running: orphans.length },
      'restarting the process launcher thread',
    );
    for (const c of orphans) c.lost(err);
    this.start().catch((e: Error) =>
      this.logger.error({ err: e.message }, 'could not restart the process launcher thread'),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
