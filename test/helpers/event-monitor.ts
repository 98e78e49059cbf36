/**
 * Wait for a daemon's typed events instead of its log lines (graphile-
 * worker's EventMonitor is the model). Every event of the emitter is
 * recorded from construction on, so an event that fired before the test
 * started waiting is not missed.
 */
import type { EventEmitter } from 'node:events';

/** An event map as Node's typed EventEmitter takes it: an interface or a type alias. */
type Map_<M> = Record<keyof M, unknown[]>;

export class EventMonitor<M extends Map_<M>> {
  private readonly seen: Array<{ name: keyof M; args: unknown[] }> = [];
  private readonly waiters = new Set<() => void>();
  private readonly originalEmit: EventEmitter['emit'];

  constructor(private readonly emitter: EventEmitter<M>) {
    const ee = emitter as unknown as EventEmitter;
    this.originalEmit = ee.emit.bind(ee);
    ee.emit = (name: string | symbol, ...args: unknown[]) => {
      this.seen.push({ name: name as keyof M, args });
      for (const w of [...this.waiters]) w();
      return this.originalEmit(name, ...args);
    };
  }

  /** How many `name` events (matching `where`) have been emitted so far. */
  count<K extends keyof M & string>(name: K, where?: (...args: M[K]) => boolean): number {
    return this.all(name, where).length;
  }

  /** The arguments of every `name` event (matching `where`) so far. */
  all<K extends keyof M & string>(name: K, where?: (...args: M[K]) => boolean): M[K][] {
    return this.seen
      .filter((e) => e.name === name && (!where || where(...(e.args as M[K]))))
      .map((e) => e.args as M[K]);
  }

  /**
   * Resolve with the arguments of the `n`th `name` event matching `where`
   * (counting from construction, so past events count); reject after
   * `timeoutMs` naming the event, with what was seen.
   */
  waitFor<K extends keyof M & string>(
    name: K,
    opts: { where?: (...args: M[K]) => boolean; n?: number; timeoutMs?: number } = {},
  ): Promise<M[K]> {
    const n = opts.n ?? 1;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const check = () => {
        const hits = this.all(name, opts.where);
        if (hits.length >= n) {
          finish();
          resolve(hits[n - 1]!);
        }
      };
      const timer = setTimeout(() => {
        finish();
        const names = this.seen.map((e) => String(e.name));
        reject(
          new Error(
            `no ${n > 1 ? `${n}th ` : ''}'${name}' event within ${timeoutMs} ms (seen: ${names.slice(-20).join(', ') || 'none'})`,
          ),
        );
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Stop recording (the emitter keeps working). */
  release(): void {
    (this.emitter as unknown as EventEmitter).emit = this.originalEmit;
  }
}
