import type { ResultMessage } from '../core/messages';

/** One result waiting for the broker's confirm. */
export interface BufferedResult {
  /** Stable per run and type (heartbeats: per beat), so a republish is recognisable as the same message. */
  messageId: string;
  body: Buffer;
  runId: string;
  type: ResultMessage['type'];
  /** Published, confirm not yet back. */
  inFlight: boolean;
  /** Called once it is confirmed, or dropped (a heartbeat). */
  waiters: Array<() => void>;
}

/**
 * The result outbox's ordered, bounded buffer. A heartbeat replaces an
 * unsent heartbeat of the same run (a newer beat says all the older one
 * did); over the byte limit the oldest unsent heartbeats are dropped (they
 * only say "still alive"). What is left over the limit after that is
 * `finished`/`starting` results, which are never dropped: `overLimit` is
 * the signal to take no new jobs until it drains.
 */
export class ResultBuffer {
  readonly entries: BufferedResult[] = [];
  bytes = 0;
  /** Heartbeats dropped over the limit. */
  dropped = 0;

  constructor(readonly maxBytes: number) {}

  get size(): number {
    return this.entries.length;
  }

  get overLimit(): boolean {
    return this.bytes > this.maxBytes;
  }

  /**
   * Queue a result at the end, or fold a heartbeat into its run's unsent
   * one; then drop old heartbeats while over the limit. Returns the entry
   * that carries it.
   */
  add(r: Omit<BufferedResult, 'inFlight' | 'waiters'>, waiter: () => void): BufferedResult {
    if (r.type === 'heartbeat') {
      const old = this.entries.find(
        (e) => e.type === 'heartbeat' && e.runId === r.runId && !e.inFlight,
      );
      if (old) {
        this.bytes += r.body.length - old.body.length;
        old.body = r.body;
        old.messageId = r.messageId;
        old.waiters.push(waiter);
        this.enforceLimit();
        return old;
      }
    }
    const e: BufferedResult = { ...r, inFlight: false, waiters: [waiter] };
    this.push(e);
    this.enforceLimit();
    return e;
  }

  /** Append without the limit (results recovered from a spill file go first, whatever their size). */
  push(e: BufferedResult): void {
    this.entries.push(e);
    this.bytes += e.body.length;
  }

  /** The broker confirmed it: out of the buffer, its waiters told. */
  confirmed(e: BufferedResult): void {
    const i = this.entries.indexOf(e);
    if (i !== -1) {
      this.entries.splice(i, 1);
      this.bytes -= e.body.length;
    }
    for (const w of e.waiters) w();
  }

  private enforceLimit(): void {
    for (let i = 0; i < this.entries.length && this.overLimit;) {
      const e = this.entries[i]!;
      if (e.type === 'heartbeat' && !e.inFlight) {
        this.entries.splice(i, 1);
        this.bytes -= e.body.length;
        this.dropped += 1;
        for (const w of e.waiters) w();
      } else i += 1;
    }
  }
}
