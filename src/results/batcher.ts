/**
 * Group commit: deliveries are collected into a batch that is written when
 * it holds `batchSize` items, or `flushMs` after its oldest one arrived, but
 * never while the previous batch is still being written. Messages keep
 * arriving during a write (the prefetch is larger than a batch), so under
 * load each write takes a full batch instead of the few messages that
 * arrived since the last timer; and with one write at a time, the ack of
 * batch k never covers a delivery of batch k+1.
 */

export interface BatcherOptions<T> {
  batchSize: number;
  flushMs: number;
  /** Write one batch. A rejection is passed to `onError`; the next batch is written all the same. */
  write: (items: T[]) => Promise<void>;
  onError: (err: unknown) => void;
}

export class Batcher<T> {
  private pending: T[] = [];
  /** When the oldest item of `pending` arrived (or the last write started, if later). */
  private pendingSince = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private draining = false;
  /** When the last write ended (0: none yet). */
  private lastWriteEndedAt = 0;

  constructor(private readonly opts: BatcherOptions<T>) {}

  /** Items waiting for a write (not counting the batch being written). */
  get size(): number {
    return this.pending.length;
  }

  /**
   * Items are waiting or being written, or were within the last `quietMs`:
   * between two batches of a load the batcher is empty only for a moment,
   * and work that should wait for the load (the notification sender) must
   * not slip into that moment.
   */
  busy(quietMs: number, now = Date.now()): boolean {
    return (
      this.pending.length > 0 ||
      this.writing !== undefined ||
      (this.lastWriteEndedAt > 0 && now - this.lastWriteEndedAt < quietMs)
    );
  }

  add(item: T): void {
    if (this.pending.length === 0) this.pendingSince = Date.now();
    this.pending.push(item);
    this.maybeWrite();
  }

  /** Forget the waiting items that `keep` refuses (their channel is gone). */
  drop(keep: (item: T) => boolean): void {
    this.pending = this.pending.filter(keep);
  }

  /**
   * Write everything in hand, whatever the batch size and timer say, and
   * what is added meanwhile; no more timed writes after this.
   */
  async drain(): Promise<void> {
    this.draining = true;
    this.clearTimer();
    while (this.writing || this.pending.length > 0) {
      if (!this.writing) this.startWrite();
      await this.writing;
    }
  }

  private maybeWrite(): void {
    if (this.writing || this.pending.length === 0 || this.draining) return;
    const waited = Date.now() - this.pendingSince;
    if (this.pending.length >= this.opts.batchSize || waited >= this.opts.flushMs) {
      this.startWrite();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.maybeWrite();
      }, this.opts.flushMs - waited);
    }
  }

  private startWrite(): void {
    this.clearTimer();
    const items = this.pending.splice(0, this.opts.batchSize);
    this.pendingSince = Date.now();
    this.writing = this.opts
      .write(items)
      .catch((err: unknown) => this.opts.onError(err))
      .finally(() => {
        this.writing = undefined;
        this.lastWriteEndedAt = Date.now();
        this.maybeWrite();
      });
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
