import type { Channel, ChannelModel, ConsumeMessage, Options } from 'amqplib';
import type { Config } from '../core/config';
import type { Knex } from '../core/db';
import type { AmqpConnection, ConfirmPublisher } from '../core/amqp';
import { exponentialBackoff, sleep, type Backoff } from '../core/async';
import type { Logger } from '../core/logger';
import type { Service } from '../core/lifecycle';
import { DEFAULT_OUTPUT_TAIL_BYTES } from '../core/message-fields';
import type { ResultMessage } from '../core/messages';
import type { MessageSigner } from '../core/signing';
import {
  DEAD_EXCHANGE,
  declareTopology,
  declareDeadQueue,
  RESULTS_DEAD_QUEUE,
  RESULTS_QUEUE,
} from '../core/topology';
import { BatchWriter } from './batch-writer';
import { shortError } from './errors';
import { readResult } from './intake';
import { markLostRuns } from './lost';
import {
  DEFAULT_MAX_ALLOWED_PACKET,
  limitsFor,
  readMaxAllowedPacket,
  type ConsumerLimits,
} from './packet';

/**
 * cronq-results: consume `cronq_results`, write results in batches, mark
 * silent runs lost.
 *
 * Deliveries are collected into a batch that is written when it holds
 * `batchSize` messages or `flushMs` after its first one, in one transaction,
 * and acked (ack multiple, up to the batch's last delivery) only after the
 * COMMIT. Batches are written one after another, so an ack of batch k never
 * covers a delivery of batch k+1. Nothing is acked before it is stored: a
 * failed write hands the whole batch back (nack, requeue) after a backoff.
 */

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
}

interface Item {
  msg: ConsumeMessage;
  channel: Channel;
  result?: ResultMessage;
  malformed?: string;
  /** Not signed with our key: dead-lettered without logging its body. */
  refused?: boolean;
}

export interface ResultsStatus extends Record<string, unknown> {
  consuming: boolean;
  batchSize: number;
  prefetch: number;
  pending: number;
  stored: number;
  batches: number;
  deadLettered: number;
  /** Results not signed with CRONQ_MESSAGE_KEY (also counted in deadLettered). */
  refused: number;
  lostMarked: number;
  failedWrites: number;
  retrying: boolean;
}

export class ResultsService implements Service {
  private channel: Channel | undefined;
  private consumerTag: string | undefined;
  private opening: Promise<void> = Promise.resolve();
  private channelConn: ChannelModel | undefined;
  private pending: Item[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the oldest message of `pending` arrived. */
  private pendingSince = 0;
  /** The write in progress; batches are written one at a time, so acks stay in delivery order. */
  private writing: Promise<void> | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private lostLoop: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private readonly random: () => number;
  private readonly batchSize: number;
  private limits: ConsumerLimits;
  private readonly writer: BatchWriter;
  /** Deliveries in hand at most: the batch being written and the next one. */
  private get qos(): number {
    return Math.min(65535, this.batchSize * 2);
  }
  private writeAttempt = 0;
  private lostAttempt = 0;
  private readonly counts = {
    stored: 0,
    batches: 0,
    deadLettered: 0,
    lostMarked: 0,
    failedWrites: 0,
    refused: 0,
  };

  constructor(private readonly opts: ResultsServiceOptions) {
    this.backoff = opts.backoff ?? exponentialBackoff(250, 15_000);
    this.random = opts.random ?? Math.random;
    this.batchSize = Math.max(1, opts.batchSize ?? opts.config.prefetch);
    this.limits = limitsFor(DEFAULT_MAX_ALLOWED_PACKET, this.outputTailBytes);
    this.writer = new BatchWriter({
      db: opts.db,
      logger: opts.logger,
      limits: () => this.limits.write,
      signal: this.abort.signal,
      random: this.random,
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
    await this.opts.connection.onConnect((conn) => this.openConsumer(conn));
    this.opts.connection.start();
    this.lostLoop = this.runLostLoop();
  }

  status(): ResultsStatus {
    return {
      consuming: this.channel !== undefined,
      batchSize: this.batchSize,
      prefetch: this.qos,
      pending: this.pending.length,
      retrying: this.writeAttempt > 0,
      ...this.counts,
    };
  }

  /** Stop consuming, write and ack the batch in hand, close the channel. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.abort.abort();
      const ch = this.channel;
      if (ch && this.consumerTag) await ch.cancel(this.consumerTag).catch(() => undefined);
      // Write everything in hand, whatever the batch size and timer say.
      while (this.writing || this.pending.length > 0) {
        if (!this.writing) this.startWrite();
        await this.writing;
      }
      await this.lostLoop;
      this.channel = undefined;
      if (ch) await ch.close().catch(() => undefined);
      this.opts.logger.info(this.counts, 'results consumer stopped');
    })();
    return this.stopped;
  }

  /**
   * Open the consuming channel on `conn`. Opens are serialised: a reopen
   * after a channel error may race with a reconnect's setup, and the later
   * one must still run (on the new connection) once the first is done.
   */
  private openConsumer(conn: ChannelModel): Promise<void> {
    const next = this.opening.catch(() => undefined).then(() => this.doOpenConsumer(conn));
    this.opening = next;
    return next;
  }

  private async doOpenConsumer(conn: ChannelModel): Promise<void> {
    if (this.stopping || (this.channel && this.channelConn === conn)) return;
    const { queueType, vhost } = this.opts.connection;
    await declareTopology(conn, { type: queueType, vhost });
    const ch = await conn.createChannel();
    ch.on('error', (err: Error) =>
      this.opts.logger.warn({ err: err.message }, 'results channel error'),
    );
    ch.on('close', () => this.onChannelClosed(ch));
    await declareDeadQueue(ch, RESULTS_DEAD_QUEUE, queueType);
    await ch.prefetch(this.qos);
    this.channel = ch;
    this.channelConn = conn;
    const { consumerTag } = await ch.consume(RESULTS_QUEUE, (m) => this.onMessage(ch, m), {
      noAck: false,
    });
    this.consumerTag = consumerTag;
    this.opts.logger.info(
      { queue: RESULTS_QUEUE, prefetch: this.qos, batchSize: this.batchSize },
      'consuming results',
    );
  }

  private onChannelClosed(ch: Channel): void {
    if (this.channel !== ch) return;
    this.channel = undefined;
    // Unacked deliveries of a closed channel go back to the queue by
    // themselves; drop our copies so they are not acked on another channel.
    this.pending = this.pending.filter((i) => i.channel !== ch);
    if (this.stopping) return;
    // A channel closed on its own (not with the connection): open a new one.
    // After a connection loss the reconnect's setup opens it instead.
    void (async () => {
      await sleep(250 + this.random() * 500, this.abort.signal);
      if (this.stopping || this.channel || !this.opts.connection.isConnected) return;
      try {
        await this.openConsumer(await this.opts.connection.connection());
      } catch (err) {
        this.opts.logger.warn(
          { err: (err as Error).message },
          'could not reopen the results channel; waiting for a reconnect',
        );
      }
    })();
  }

  /**
   * The consumer's callback. It never throws: an exception here would close
   * the channel and put the message back at the head of the queue, to fail
   * again, stopping everything behind it.
   */
  private onMessage(ch: Channel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled us (queue deleted): start over on a new channel.
      this.opts.logger.warn('results consumer cancelled by the broker');
      void ch.close().catch(() => undefined);
      return;
    }
    let item: Item;
    try {
      item = {
        msg,
        channel: ch,
        ...readResult(msg.content, { maxOutputBytes: this.limits.maxOutputBytes }),
      };
    } catch (err) {
      // readResult does not throw; should it ever, the message is set aside, not the consumer.
      item = { msg, channel: ch, malformed: `could not be read: ${shortError(err)}` };
    }
    try {
      this.checkSignature(item);
      if (this.pending.length === 0) this.pendingSince = Date.now();
      this.pending.push(item);
      this.maybeWrite();
    } catch (err) {
      this.opts.logger.error({ err: shortError(err) }, 'unexpected error taking a result message');
    }
  }

  /**
   * Group commit: a batch is written when it is full, or when its oldest
   * message has waited flushMs, but never while another write is running.
   * Messages keep arriving during a write (the prefetch is larger than a
   * batch), so under load each write takes a full batch instead of the
   * few messages that arrived since the last timer.
   */
  private maybeWrite(): void {
    if (this.writing || this.pending.length === 0 || this.stopping) return;
    const waited = Date.now() - this.pendingSince;
    if (this.pending.length >= this.batchSize || waited >= this.opts.config.flushMs) {
      this.startWrite();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.maybeWrite();
      }, this.opts.config.flushMs - waited);
    }
  }

  private startWrite(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const items = this.pending.splice(0, this.batchSize);
    this.pendingSince = Date.now();
    this.writing = this.flush(items)
      .catch((err: unknown) =>
        this.opts.logger.error({ err: shortError(err) }, 'unexpected error writing results'),
      )
      .finally(() => {
        this.writing = undefined;
        this.maybeWrite();
      });
  }

  private async flush(all: Item[]): Promise<void> {
    const items = all.filter((i) => i.channel === this.channel);
    if (items.length === 0) return;
    const ch = items[0]!.channel;
    const last = items[items.length - 1]!.msg;
    try {
      const stored = await this.store(items);
      this.ack(ch, last);
      this.counts.batches += 1;
      this.counts.stored += stored;
      if (this.writeAttempt > 0) this.opts.logger.info('results are being stored again');
      this.writeAttempt = 0;
    } catch (err) {
      this.counts.failedWrites += 1;
      const delay = this.backoff.delay(this.writeAttempt);
      const fields = {
        err: shortError(err),
        code: (err as { code?: string }).code,
        batch: items.length,
        nextRetryAt: new Date(Date.now() + delay).toISOString(),
      };
      // One warning per outage; the retries after it only at debug level.
      if (this.writeAttempt === 0)
        this.opts.logger.warn(
          fields,
          'could not store results; handing them back and retrying with backoff',
        );
      else this.opts.logger.debug(fields, 'still cannot store results');
      this.writeAttempt += 1;
      if (!this.stopping) await sleep(delay, this.abort.signal);
      try {
        if (ch === this.channel) ch.nack(last, true, true);
      } catch {
        // The channel is gone; the broker requeues its unacked deliveries itself.
      }
    }
  }

  private ack(ch: Channel, last: ConsumeMessage): void {
    try {
      if (ch === this.channel) {
        ch.ack(last, true);
        return;
      }
    } catch {
      // Falls through: the channel closed under us.
    }
    // Stored but not acked: the broker redelivers them, and writing them again changes nothing.
    this.opts.logger.debug('channel closed before the ack; the batch will be redelivered');
  }

  /** Write the batch, dead-letter what cannot be stored; returns how many results were stored. */
  private async store(items: Item[]): Promise<number> {
    const dead: Array<{ item: Item; reason: string }> = items
      .filter((i) => i.malformed !== undefined)
      .map((i) => ({ item: i, reason: i.malformed! }));
    const good = items.filter((i): i is Item & { result: ResultMessage } => i.result !== undefined);
    const { stored, rejected } = await this.writer.write(good);
    dead.push(...rejected);
    // Dead letters go out after the write: a failed write hands the whole
    // batch back, and a malformed message is then not published twice.
    await Promise.all(dead.map((d) => this.deadLetter(d.item, d.reason)));
    return stored;
  }

  private async deadLetter(item: Item, reason: string): Promise<void> {
    const p = item.msg.properties;
    const options: Options.Publish = {
      persistent: true,
      headers: {
        ...originalHeaders(p.headers),
        'x-cronq-dead-reason': shortReason(reason),
        'x-cronq-dead-at': new Date().toISOString(),
        ...(p.messageId ? { 'x-cronq-original-message-id': String(p.messageId) } : {}),
      },
    };
    if (p.contentType) options.contentType = String(p.contentType);
    await this.opts.publisher.publish(DEAD_EXCHANGE, RESULTS_DEAD_QUEUE, item.msg.content, options);
    this.counts.deadLettered += 1;
    this.opts.logger.warn(
      {
        reason: shortReason(reason),
        queue: RESULTS_DEAD_QUEUE,
        body: item.refused ? undefined : item.msg.content.subarray(0, 200).toString('utf8'),
      },
      'result message cannot be stored; moved to the dead-letter queue',
    );
  }

  /**
   * A result not signed by one of our keys never reaches the database. No
   * age limit: a result may wait in the queue as long as this consumer is
   * down, and a replayed one changes nothing (store.ts writes each run's
   * outcome once).
   */
  private checkSignature(item: Item): void {
    const signer = this.opts.signer;
    if (!signer || !item.result) return;
    const { msg } = item;
    const reason = signer.verify(
      'result',
      item.result.run_id,
      msg.content,
      msg.properties.headers,
      {
        maxFutureMs: Infinity,
      },
    );
    if (reason === undefined) return;
    this.counts.refused += 1;
    item.result = undefined;
    item.malformed = `refused: ${reason}`;
    item.refused = true;
  }

  private async runLostLoop(): Promise<void> {
    const lostAfterMs = this.opts.config.lostAfterMs;
    const every = Math.min(5000, Math.max(250, lostAfterMs / 4));
    while (!this.stopping) {
      await sleep(
        this.lostAttempt > 0
          ? this.backoff.delay(this.lostAttempt)
          : every * (0.75 + this.random() * 0.5),
        this.abort.signal,
      );
      if (this.stopping) break;
      try {
        if (!(await this.caughtUp())) continue;
        const lost = await markLostRuns(this.opts.db, lostAfterMs);
        for (const r of lost)
          this.opts.logger.warn(
            { run_id: r.run_id, job_id: r.job_id, host: r.host },
            'run marked lost: no heartbeat',
          );
        this.counts.lostMarked += lost.length;
        if (this.lostAttempt > 0) this.opts.logger.info('lost-run check works again');
        this.lostAttempt = 0;
      } catch (err) {
        if (this.lostAttempt === 0)
          this.opts.logger.warn(
            { err: shortError(err) },
            'lost-run check failed; retrying with backoff',
          );
        this.lostAttempt += 1;
      }
    }
  }

  /**
   * Silence is only judged while this consumer is connected and no result
   * waits unread in the queue: after an outage the backlog may hold the
   * very heartbeats that would show a run is alive.
   */
  private async caughtUp(): Promise<boolean> {
    const ch = this.channel;
    if (!ch) return false;
    const { messageCount } = await ch.checkQueue(RESULTS_QUEUE);
    if (messageCount > 0)
      this.opts.logger.debug(
        { waiting: messageCount },
        'results are waiting in the queue; lost-run check postponed',
      );
    return messageCount === 0;
  }
}

/** Dead-letter reasons are headers: short, one line, never a statement or a command. */
function shortReason(reason: string): string {
  const line = reason.replace(/\s+/g, ' ');
  return line.length > 240 ? `${line.slice(0, 239)}…` : line;
}

/**
 * The message's own headers, kept on its dead letter unless they are large:
 * a header block that no longer fits a frame with ours added would make the
 * dead-letter publish fail, and the batch with it, forever.
 */
function originalHeaders(h: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!h) return {};
  let size: number;
  try {
    size = JSON.stringify(h).length;
  } catch {
    size = Infinity;
  }
  return size <= 16 * 1024 ? h : { 'x-cronq-original-headers': 'dropped (over 16 KiB)' };
}
