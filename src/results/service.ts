import { EventEmitter } from 'node:events';
import type { Config } from '../core/config';
import type { Knex } from '../core/db';
import { ResilientConsumer, type AmqpConnection, type ConfirmPublisher } from '../core/amqp';
import { exponentialBackoff, type Backoff } from '../core/async';
import type { Logger } from '../core/logger';
import type { Service } from '../core/lifecycle';
import { DEFAULT_OUTPUT_TAIL_BYTES } from '../core/message-fields';
import type { MessageSigner } from '../core/signing';
import type { NotifyTarget } from '../core/notify/targets';
import {
  declareDeadQueue,
  declareTopology,
  RESULTS_DEAD_QUEUE,
  RESULTS_QUEUE,
} from '../core/topology';
import { BatchCommit } from './batch-commit';
import { BatchWriter } from './batch-writer';
import { Batcher } from './batcher';
import { DeadLetters } from './dead-letters';
import { shortError } from './errors';
import type { ResultsCounts, ResultsEvents } from './events';
import { takeDelivery, type ResultItem } from './intake';
import { LostSweeper } from './lost-sweeper';
import {
  DEFAULT_MAX_ALLOWED_PACKET,
  limitsFor,
  readMaxAllowedPacket,
  type ConsumerLimits,
} from './packet';

/**
 * cronq-results: consume `cronq_results`, write results in batches, mark
 * silent runs lost. This class wires the parts: the resilient consumer
 * (src/core/amqp) owns the channel; intake.ts reads each delivery; the
 * batcher (group commit) hands batches one at a time to the batch commit
 * (write, dead-letter, ack after COMMIT, or hand back after a backoff);
 * the lost sweeper runs beside them. It is an `EventEmitter<ResultsEvents>`
 * (events.ts), and `status()` counts what those events report.
 */

/**
 * How long after its last write the results count as busy still: between
 * two batches of a load the consumer is empty for a moment, and the
 * notification sender should not start its database work in it.
 */
export const BUSY_QUIET_MS = 250;

export interface ResultsServiceOptions {
  db: Knex;
  connection: AmqpConnection;
  /** For dead letters; confirms tell us the broker has them before we ack. */
  publisher: ConfirmPublisher;
  config: Config['results'];
  logger: Logger;
  /**
   * Messages per write; default config.prefetch. The channel's prefetch
   * (basic.qos) is twice this, so the next batch is being delivered while
   * one is written.
   */
  batchSize?: number;
  backoff?: Backoff;
  random?: () => number;
  /** The runners' CRONQ_OUTPUT_TAIL_BYTES: longer output is cut to its tail when read. */
  outputTailBytes?: number;
  /** With CRONQ_MESSAGE_KEY: results must carry its signature (docs/security.md). */
  signer?: MessageSigner;
  /** CRONQ_NOTIFY_* targets for every job; the notifications are written with the results (docs/notifications.md). */
  notifyTargets?: readonly NotifyTarget[];
  /** Runs killed before they started that a runner has started (kill-again.ts). */
  onStartedAfterKill?: (runIds: string[]) => void;
}

export interface ResultsStatus extends ResultsCounts, Record<string, unknown> {
  consuming: boolean;
  batchSize: number;
  prefetch: number;
  pending: number;
  retrying: boolean;
}

export class ResultsService extends EventEmitter<ResultsEvents> implements Service {
  private readonly abort = new AbortController();
  private readonly batchSize: number;
  /** Deliveries in hand at most: the batch being written and the next one. */
  private readonly prefetch: number;
  private limits: ConsumerLimits;
  private readonly consumer: ResilientConsumer;
  private readonly batcher: Batcher<ResultItem>;
  private readonly commit: BatchCommit;
  private readonly sweeper: LostSweeper;
  private sweeping: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;
  /** Whether 'consuming results' was logged for the current channel. */
  private announced = false;
  private readonly counts: ResultsCounts = {
    stored: 0,
    batches: 0,
    deadLettered: 0,
    refused: 0,
    lostMarked: 0,
    retriesScheduled: 0,
    failedWrites: 0,
  };

  constructor(private readonly opts: ResultsServiceOptions) {
    super();
    const backoff = opts.backoff ?? exponentialBackoff(250, 15_000);
    const random = opts.random ?? Math.random;
    const { logger, connection } = opts;
    this.batchSize = Math.max(1, opts.batchSize ?? opts.config.prefetch);
    this.prefetch = Math.min(65535, this.batchSize * 2);
    this.limits = limitsFor(DEFAULT_MAX_ALLOWED_PACKET, this.outputTailBytes);
    this.countEvents();

    this.consumer = new ResilientConsumer({
      connection,
      queue: RESULTS_QUEUE,
      prefetch: this.prefetch,
      logger,
      declare: async (conn, ch) => {
        await declareTopology(conn, { type: connection.queueType, vhost: connection.vhost });
        await declareDeadQueue(ch, RESULTS_DEAD_QUEUE, connection.queueType);
      },
      onDelivery: (d) => {
        // Never throws: a throw would set the message aside, unread.
        try {
          const item = takeDelivery(d, {
            maxOutputBytes: this.limits.maxOutputBytes,
            signer: opts.signer,
          });
          if (item.refused) this.emit('refused', { reason: item.malformed! });
          this.batcher.add(item);
        } catch (err) {
          logger.error({ err: shortError(err) }, 'unexpected error taking a result message');
        }
      },
    });
    this.consumer.on('consuming', () => this.onConsuming());
    // Unacked deliveries of a closed channel go back to the queue by
    // themselves; drop our copies so they are not acked on another channel.
    this.consumer.on('channelLost', () => {
      this.announced = false;
      this.batcher.drop((i) => i.delivery.live);
    });

    const writer = new BatchWriter({
      db: opts.db,
      logger,
      limits: () => this.limits.write,
      signal: this.abort.signal,
      random,
      notifyTargets: opts.notifyTargets,
      onStartedAfterKill: opts.onStartedAfterKill,
    });
    this.commit = new BatchCommit({
      writer,
      deadLetters: new DeadLetters({ publisher: opts.publisher, logger, events: this }),
      logger,
      events: this,
      backoff,
      signal: this.abort.signal,
    });
    this.batcher = new Batcher<ResultItem>({
      batchSize: this.batchSize,
      flushMs: opts.config.flushMs,
      write: (items) => this.commit.commit(items),
      onError: (err) => logger.error({ err: shortError(err) }, 'unexpected error writing results'),
    });
    this.sweeper = new LostSweeper({
      db: opts.db,
      connection,
      consuming: () => this.consumer.consuming,
      lostAfterMs: opts.config.lostAfterMs,
      logger,
      events: this,
      backoff,
      random,
      signal: this.abort.signal,
      notifyTargets: opts.notifyTargets,
    });
  }

  private get outputTailBytes(): number {
    return this.opts.outputTailBytes ?? DEFAULT_OUTPUT_TAIL_BYTES;
  }

  async start(): Promise<void> {
    // Once, before the first message: every statement is sized to this server's packet limit.
    try {
      const packet = await readMaxAllowedPacket(this.opts.db);
      this.limits = limitsFor(packet, this.outputTailBytes);
      this.opts.logger.debug({ maxAllowedPacket: packet, ...this.limits }, 'write limits');
    } catch (err) {
      this.opts.logger.warn(
        { err: shortError(err), assumed: DEFAULT_MAX_ALLOWED_PACKET },
        'could not read @@max_allowed_packet; assuming the default',
      );
    }
    await this.consumer.start();
    this.opts.connection.start();
    this.sweeping = this.sweeper.run();
  }

  /**
   * Results are waiting to be written, being written, or were a moment ago
   * (BUSY_QUIET_MS): the notification sender lets them go first
   * (notify/sender.ts).
   */
  get busy(): boolean {
    return this.batcher.busy(BUSY_QUIET_MS);
  }

  status(): ResultsStatus {
    return {
      consuming: this.consumer.consuming,
      batchSize: this.batchSize,
      prefetch: this.prefetch,
      pending: this.batcher.size,
      retrying: this.commit.retrying,
      ...this.counts,
    };
  }

  /** Stop consuming, write and ack everything in hand, close the channel. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.abort.abort();
      await this.consumer.stop();
      await this.batcher.drain();
      await this.sweeping;
      await this.consumer.close();
      this.opts.logger.info(this.counts, 'results consumer stopped');
      this.emit('stopped', { ...this.counts });
    })();
    return this.stopped;
  }

  private onConsuming(): void {
    this.emit('consuming');
    if (this.announced) return;
    this.announced = true;
    this.opts.logger.info(
      { queue: RESULTS_QUEUE, prefetch: this.prefetch, batchSize: this.batchSize },
      'consuming results',
    );
  }

  /** status() counts what the parts report. */
  private countEvents(): void {
    const c = this.counts;
    this.on('batch:stored', ({ stored }) => {
      c.batches += 1;
      c.stored += stored;
    });
    this.on('batch:failed', () => (c.failedWrites += 1));
    this.on('dead-lettered', () => (c.deadLettered += 1));
    this.on('refused', () => (c.refused += 1));
    this.on('lost:marked', ({ count }) => (c.lostMarked += count));
    this.on('retry:scheduled', () => (c.retriesScheduled += 1));
  }
}
