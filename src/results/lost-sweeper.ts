import type { EventEmitter } from 'node:events';
import { withChannel, type AmqpConnection } from '../core/amqp';
import { sleep, type Backoff } from '../core/async';
import type { Knex } from '../core/db';
import type { Logger } from '../core/logger';
import { RESULTS_QUEUE } from '../core/topology';
import { shortError } from './errors';
import type { ResultsEvents } from './events';
import { markLostRuns } from './lost';
import type { NotifyTarget } from '../core/notify/targets';

export interface LostSweeperOptions {
  db: Knex;
  connection: AmqpConnection;
  /** Whether this consumer is taking results now. */
  consuming: () => boolean;
  lostAfterMs: number;
  logger: Logger;
  events: EventEmitter<ResultsEvents>;
  /** Between sweeps that failed. */
  backoff: Backoff;
  random: () => number;
  signal: AbortSignal;
  /** CRONQ_NOTIFY_* targets for every job (docs/notifications.md). */
  notifyTargets?: readonly NotifyTarget[];
}

/**
 * The periodic lost-run check (lost.ts): every quarter of the limit,
 * between 0.25 s and 5 s, with ±25% jitter so several consumers spread
 * out; after a failure, with backoff instead.
 */
export class LostSweeper {
  private attempt = 0;

  constructor(private readonly opts: LostSweeperOptions) {}

  /** Sweep until the signal aborts. Never rejects. */
  async run(): Promise<void> {
    const { lostAfterMs, signal } = this.opts;
    const every = Math.min(5000, Math.max(250, lostAfterMs / 4));
    while (!signal.aborted) {
      await sleep(
        this.attempt > 0
          ? this.opts.backoff.delay(this.attempt)
          : every * (0.75 + this.opts.random() * 0.5),
        signal,
      );
      if (signal.aborted) break;
      await this.sweepOnce();
    }
  }

  private async sweepOnce(): Promise<void> {
    const { logger, events } = this.opts;
    try {
      if (!(await this.caughtUp())) return;
      const lost = await markLostRuns(
        this.opts.db,
        this.opts.lostAfterMs,
        undefined,
        this.opts.random,
        this.opts.notifyTargets,
      );
      for (const r of lost)
        logger.warn(
          { run_id: r.run_id, job_id: r.job_id, host: r.host },
          'run marked lost: no heartbeat',
        );
      if (lost.length > 0) events.emit('lost:marked', { count: lost.length, runs: lost });
      for (const r of lost) if (r.retry) events.emit('retry:scheduled', r.retry);
      if (this.attempt > 0) logger.info('lost-run check works again');
      this.attempt = 0;
    } catch (err) {
      if (this.attempt === 0)
        logger.warn({ err: shortError(err) }, 'lost-run check failed; retrying with backoff');
      events.emit('lost:failed', { error: shortError(err), attempt: this.attempt });
      this.attempt += 1;
    }
  }

  /**
   * Silence is only judged while this consumer is consuming and no result
   * waits unread in the queue: after an outage the backlog may hold the
   * very heartbeats that would show a run is alive.
   */
  private async caughtUp(): Promise<boolean> {
    const { connection } = this.opts;
    if (!this.opts.consuming() || !connection.isConnected) return false;
    const { messageCount } = await withChannel(await connection.connection(), (ch) =>
      ch.checkQueue(RESULTS_QUEUE),
    );
    if (messageCount > 0)
      this.opts.logger.debug(
        { waiting: messageCount },
        'results are waiting in the queue; lost-run check postponed',
      );
    return messageCount === 0;
  }
}
