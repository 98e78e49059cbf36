import type { EventEmitter } from 'node:events';
import { sleep, type Backoff } from '../core/async';
import type { Logger } from '../core/logger';
import type { ResultMessage } from '../core/messages';
import type { BatchWriter } from './batch-writer';
import type { DeadLetters } from './dead-letters';
import { shortError } from './errors';
import type { ResultsEvents } from './events';
import type { ResultItem } from './intake';
import type { RetryScheduled } from './retries';

export interface BatchCommitOptions {
  writer: BatchWriter;
  deadLetters: DeadLetters;
  logger: Logger;
  events: EventEmitter<ResultsEvents>;
  /** Between failed writes of a batch that is handed back. */
  backoff: Backoff;
  /** Aborted on stop: a failed batch is then handed back without waiting. */
  signal: AbortSignal;
}

/**
 * One batch, from write to ack. Nothing is acked before it is stored: after
 * the COMMIT (and the broker's confirm of its dead letters) the whole batch
 * is acked at once, up to its last delivery; a failed write hands every
 * delivery of it back (nack, requeue) after a backoff that grows while the
 * failures go on.
 */
export class BatchCommit {
  /** Failed writes in a row. */
  private failures = 0;

  constructor(private readonly opts: BatchCommitOptions) {}

  /** True while writes are failing and batches are handed back. */
  get retrying(): boolean {
    return this.failures > 0;
  }

  async commit(batch: ResultItem[]): Promise<void> {
    // Deliveries of a closed channel are back on the queue; an ack of them on another channel would be wrong.
    const items = batch.filter((i) => i.delivery.live);
    if (items.length === 0) return;
    const { logger, events } = this.opts;
    const began = performance.now();
    try {
      const { stored, retries } = await this.store(items);
      const acked = items[items.length - 1]!.delivery.ack({ upTo: true });
      // Stored but not acked: the broker redelivers them, and writing them again changes nothing.
      if (!acked) logger.debug('channel closed before the ack; the batch will be redelivered');
      events.emit('batch:stored', {
        count: items.length,
        stored,
        acked,
        ms: performance.now() - began,
        oldestAgeMs: oldestAgeMs(items),
      });
      for (const r of retries) {
        logger.info(
          {
            run_id: r.runId,
            job_id: r.jobId,
            retry_run_id: r.retryRunId,
            attempt: r.attempt,
            not_before: r.notBefore.toISOString(),
          },
          'retry scheduled',
        );
        events.emit('retry:scheduled', r);
      }
      if (this.failures > 0) {
        logger.info('results are being stored again');
        events.emit('batch:recovered', { failures: this.failures });
      }
      this.failures = 0;
    } catch (err) {
      await this.handBack(items, err);
    }
  }

  /** Write the batch, dead-letter what cannot be stored; returns how many results were stored, and the retries written. */
  private async store(items: ResultItem[]): Promise<{ stored: number; retries: RetryScheduled[] }> {
    const dead = items
      .filter((i) => i.malformed !== undefined)
      .map((i) => ({ item: i, reason: i.malformed! }));
    const good = items.filter(
      (i): i is ResultItem & { result: ResultMessage } => i.result !== undefined,
    );
    const { stored, rejected, retries } = await this.opts.writer.write(good);
    dead.push(...rejected);
    // Dead letters go out after the write: a failed write hands the whole
    // batch back, and a malformed message is then not published twice.
    await Promise.all(dead.map((d) => this.opts.deadLetters.publish(d.item, d.reason)));
    return { stored, retries };
  }

  private async handBack(items: ResultItem[], err: unknown): Promise<void> {
    const { logger, signal } = this.opts;
    const attempt = this.failures;
    const delay = signal.aborted ? 0 : this.opts.backoff.delay(attempt);
    const fields = {
      err: shortError(err),
      code: (err as { code?: unknown } | null)?.code,
      batch: items.length,
      nextRetryAt: new Date(Date.now() + delay).toISOString(),
    };
    // One warning per outage; the retries after it only at debug level.
    if (attempt === 0)
      logger.warn(fields, 'could not store results; handing them back and retrying with backoff');
    else logger.debug(fields, 'still cannot store results');
    this.failures += 1;
    this.opts.events.emit('batch:failed', {
      count: items.length,
      error: fields.err,
      attempt,
      retryInMs: delay,
    });
    await sleep(delay, signal);
    // A delivery whose channel has gone is already back on the queue (nack returns false).
    for (const i of items) i.delivery.nack(true);
  }
}

/** How long ago (by the runners' clocks) the oldest result of the batch was sent; null when none was readable. */
function oldestAgeMs(items: ResultItem[]): number | null {
  let oldest = Infinity;
  for (const i of items) {
    const sent = i.result ? Date.parse(i.result['x-send-datetime']) : NaN;
    if (sent < oldest) oldest = sent;
  }
  return oldest === Infinity ? null : Math.max(0, Date.now() - oldest);
}
