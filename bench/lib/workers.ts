/**
 * Worker processes for the peers and the bare pipeline: forked with the tsx
 * loader, they talk to the driver over IPC. A worker sends {type:'ready'}
 * once it consumes, and {type:'records', records:[...]} in small batches
 * (every 200 ms) so IPC costs the worker next to nothing per job.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { ExecutionRecord } from './occurrences';

export interface WorkerMessage {
  type: 'ready' | 'records' | 'error';
  records?: ExecutionRecord[];
  message?: string;
}

export class WorkerPool {
  private readonly children: ChildProcess[] = [];
  private readyCount = 0;
  private readyWaiters: Array<() => void> = [];
  records: ExecutionRecord[] = [];
  errors: string[] = [];

  constructor(
    private readonly file: string,
    private readonly env: Record<string, string>,
    private readonly count = 2,
  ) {}

  async start(timeoutMs = 30_000): Promise<void> {
    process.once('exit', () => {
      for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
    });
    for (let i = 0; i < this.count; i++) {
      const child = fork(this.file, [], {
        execArgv: ['--import', 'tsx'],
        env: { ...process.env, ...this.env, BENCH_WORKER_INDEX: String(i) },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      child.on('message', (m: WorkerMessage) => this.onMessage(m));
      this.children.push(child);
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `${this.file}: workers not ready within ${timeoutMs} ms: ${this.errors.join('; ')}`,
            ),
          ),
        timeoutMs,
      );
      const check = () => {
        if (this.readyCount >= this.count) {
          clearTimeout(timer);
          resolve();
        }
      };
      this.readyWaiters.push(check);
      check();
    });
  }

  private onMessage(m: WorkerMessage): void {
    if (m.type === 'ready') {
      this.readyCount++;
      for (const w of this.readyWaiters) w();
    } else if (m.type === 'records' && m.records) {
      for (const r of m.records) this.records.push(r);
    } else if (m.type === 'error') {
      this.errors.push(m.message ?? 'unknown');
    }
  }

  /** Ask every worker to flush its pending records, then wait a moment for them to arrive. */
  async flush(): Promise<void> {
    for (const c of this.children) if (c.connected) c.send({ type: 'flush' });
    await new Promise((r) => setTimeout(r, 300));
  }

  /**
   * Wait until the workers have gone `quietMs` without reporting a run (the
   * backlog is drained), at most `maxMs`: a late run is then counted as late
   * (in the lag), not as missed.
   */
  async drain(quietMs = 2000, maxMs = 60_000): Promise<void> {
    const deadline = Date.now() + maxMs;
    let last = -1;
    let stableSince = Date.now();
    while (Date.now() < deadline) {
      await this.flush();
      if (this.records.length !== last) {
        last = this.records.length;
        stableSince = Date.now();
      } else if (Date.now() - stableSince >= quietMs) {
        return;
      }
    }
  }

  pids(): number[] {
    return this.children.map((c) => c.pid).filter((p): p is number => typeof p === 'number');
  }

  takeRecords(): ExecutionRecord[] {
    const r = this.records;
    this.records = [];
    return r;
  }

  async stop(graceMs = 10_000): Promise<void> {
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const timer = setTimeout(() => c.kill('SIGKILL'), graceMs);
            c.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
  }
}

/** Worker side: batch records to the parent and answer flush requests. */
export function workerReporter(): {
  record(r: ExecutionRecord): void;
  ready(): void;
  error(message: string): void;
} {
  let pending: ExecutionRecord[] = [];
  const flush = () => {
    if (pending.length && process.send) {
      process.send({ type: 'records', records: pending } satisfies WorkerMessage);
      pending = [];
    }
  };
  setInterval(flush, 200).unref();
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'flush') flush();
  });
  return {
    record(r) {
      pending.push(r);
    },
    ready() {
      process.send?.({ type: 'ready' } satisfies WorkerMessage);
    },
    error(message) {
      process.send?.({ type: 'error', message } satisfies WorkerMessage);
    },
  };
}
