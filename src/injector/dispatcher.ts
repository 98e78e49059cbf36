import { EventEmitter } from 'node:events';
import type { ConfirmPublisher } from '../core/amqp';
import type { Knex } from '../core/db';
import { BrokerUnavailableError } from '../core/errors';
import type { Logger } from '../core/logger';
import { errorText } from '../core/error-text';
import type { MessageSigner } from '../core/signing';
import type { DispatcherEvents } from './events';
import { markPublished, markUnroutable, unroutableReason } from './outbox';
import type { PlannedRun } from './plan';
import { publishRuns } from './publish';

export interface DispatcherOptions {
  db: Knex;
  publisher: ConfirmPublisher;
  logger: Logger;
  confirmTimeoutMs: number;
  /** Signs job messages when CRONQ_MESSAGE_KEY is set (docs/security.md). */
  signer?: MessageSigner;
  /** Batches publishing at once; a claim waits for room (backpressure from a slow broker). */
  maxInFlightBatches: number;
  /**
   * False while the broker connection is down: a batch then fails at once
   * instead of waiting inside the publisher for the next connection (and
   * going out late, beside its own retry).
   */
  brokerReady: () => boolean;
  /** The database's clock (ms), estimated from the last probe: what scheduled_for is compared with. */
  dbNow?: () => number;
}

/**
 * Publishes committed runs and records what the broker said, off the
 * claim's critical path: a batch is published as soon as it is claimed,
 * several batches' confirms overlap, and the `published_at` writes of
 * batches confirmed close together are merged into one UPDATE. A batch that
 * is not confirmed leaves its runs unpublished (they are still in the
 * outbox) and is reported through takeError()/unpublished so the injector
 * backs off and publishes them again under the same run ids. It emits
 * batch:committed before a batch is published and batch:confirmed when the
 * broker has answered for it (events.ts).
 */
export class Dispatcher extends EventEmitter<DispatcherEvents> {
  private readonly inFlight = new Set<Promise<void>>();
  /** Confirmed runs waiting for their published_at write. */
  private readonly toMark = new Set<string>();
  private marking: Promise<void> | undefined;
  private error: unknown;
  /** Runs this process failed to publish, or did not try after a failure; retried once the broker is back. */
  readonly unpublished = new Set<string>();
  readonly counters = { published: 0, republished: 0, unroutable: 0, publishFailures: 0 };

  constructor(private readonly opts: DispatcherOptions) {
    super();
  }

  /** A publish failed and the injector has not taken the error yet. */
  get failing(): boolean {
    return this.error !== undefined;
  }

  /** The first publish failure since the last call, if any. */
  takeError(): unknown {
    const e = this.error;
    this.error = undefined;
    return e;
  }

  /** Start publishing `runs`, after waiting for room; does not wait for the confirms. */
  async submit(runs: PlannedRun[], republish = false): Promise<void> {
    if (runs.length === 0) return;
    while (this.inFlight.size >= this.opts.maxInFlightBatches) await Promise.race(this.inFlight);
    const task = this.dispatch(runs, republish)
      .catch((err: unknown) => {
        // Not expected (publish outcomes are caught inside); keep the runs for the retry, never crash.
        for (const r of runs) this.unpublished.add(r.runId);
        this.error ??= err;
      })
      .finally(() => this.inFlight.delete(task));
    this.inFlight.add(task);
  }

  /** Publish `runs` and wait until their outcome is recorded. */
  async publishNow(runs: PlannedRun[], republish = false): Promise<void> {
    await this.submit(runs, republish);
    await this.idle();
  }

  /** Wait until every batch in hand is confirmed (or failed) and recorded. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
    await this.flushMarks();
  }

  /** Record published_at for confirms whose write failed earlier (database away); throws while it still fails. */
  async flushMarks(): Promise<void> {
    while (this.marking) await this.marking;
    if (this.toMark.size === 0) return;
    const ids = [...this.toMark];
    await markPublished(this.opts.db, ids);
    for (const id of ids) this.toMark.delete(id);
  }

  private async dispatch(runs: PlannedRun[], republish: boolean): Promise<void> {
    if (this.error !== undefined) {
      // The broker just failed us: don't add to the pile, keep these for the retry.
      for (const r of runs) this.unpublished.add(r.runId);
      return;
    }
    if (!this.opts.brokerReady()) {
      for (const r of runs) this.unpublished.add(r.runId);
      this.error ??= new BrokerUnavailableError(
        'broker connection lost; the runs stay queued and are published again',
      );
      return;
    }
    const { logger } = this.opts;
    this.emit('batch:committed', { runIds: runs.map((r) => r.runId), republish });
    const outcome = await publishRuns(
      this.opts.publisher,
      runs,
      this.opts.confirmTimeoutMs,
      this.opts.signer,
    );
    const at = (this.opts.dbNow ?? Date.now)();
    this.emit('batch:confirmed', {
      confirmed: outcome.confirmed.map((r) => r.runId),
      lateMs: outcome.confirmed.map((r) => at - r.scheduledFor.getTime()),
      unroutable: outcome.unroutable.length,
      failed: outcome.failed.length,
      republish,
    });
    for (const r of outcome.confirmed) this.toMark.add(r.runId);
    this.counters.published += outcome.confirmed.length;
    if (republish) this.counters.republished += outcome.confirmed.length;
    this.kickMarker();
    if (outcome.failed.length > 0) {
      this.counters.publishFailures += outcome.failed.length;
      for (const r of outcome.failed) this.unpublished.add(r.runId);
      this.error ??= new BrokerUnavailableError(
        `${outcome.failed.length} of ${runs.length} publishes not confirmed (${outcome.firstError?.message ?? 'unknown'}); they stay queued and are published again`,
      );
    }
    if (outcome.unroutable.length > 0) {
      try {
        await markUnroutable(this.opts.db, outcome.unroutable);
        this.counters.unroutable += outcome.unroutable.length;
        for (const r of outcome.unroutable) {
          logger.warn(
            { job_id: r.jobId, run_id: r.runId, routing_key: r.routingKey },
            `run failed: ${unroutableReason(r.routingKey)}`,
          );
        }
      } catch (err) {
        // Still queued and unpublished: the sweep publishes them again and the broker returns them again.
        logger.warn(
          { err: errorText(err), runs: outcome.unroutable.length },
          'could not record unroutable runs; they will be retried',
        );
      }
    }
    if (logger.isLevelEnabled('debug')) {
      logger.debug(
        {
          published: outcome.confirmed.length,
          unroutable: outcome.unroutable.length,
          failed: outcome.failed.length,
          republish,
        },
        'batch published',
      );
    }
  }

  /** One writer of published_at at a time; confirms arriving meanwhile go into its next UPDATE. */
  private kickMarker(): void {
    if (this.marking || this.toMark.size === 0) return;
    this.marking = (async () => {
      try {
        while (this.toMark.size > 0) {
          const ids = [...this.toMark];
          await markPublished(this.opts.db, ids);
          for (const id of ids) this.toMark.delete(id);
        }
      } catch (err) {
        // Left in toMark; the injector's next cycle writes them (and backs off while the database is away).
        this.opts.logger.debug(
          { err: errorText(err), runs: this.toMark.size },
          'published_at not written yet',
        );
      } finally {
        this.marking = undefined;
      }
    })();
  }
}
