import { EventEmitter } from 'node:events';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { asError, exponentialBackoff, sleep, type Backoff } from '../async';
import { ConfigError } from '../errors';
import type { Logger } from '../logger';
import { openChannel } from './channels';
import type { AmqpConnection } from './connection';

/**
 * One message taken from the queue. It can be acked or nacked only while
 * the channel it came on is open; once that channel is gone the broker has
 * put the message back on the queue by itself, and `ack`/`nack` do nothing
 * and return false. Neither ever throws.
 */
export interface Delivery {
  readonly msg: ConsumeMessage;
  /** True while its channel is open. */
  readonly live: boolean;
  /** Ack it; with `upTo`, also every earlier unacked delivery of its channel (basic.ack multiple). */
  ack(opts?: { upTo?: boolean }): boolean;
  /** Reject it: back to the queue with `requeue`, else to the queue's dead-letter exchange (or dropped). */
  nack(requeue: boolean): boolean;
}

export interface ConsumerEvents {
  /** The broker has registered the consumer: deliveries flow. */
  consuming: [];
  /** The consumer was cancelled (by us for a hold, or by the broker): no new deliveries. */
  idle: [];
  /** The channel closed: every delivery in hand is back on the queue and can no longer be acked. */
  channelLost: [];
}

export interface ResilientConsumerOptions {
  connection: AmqpConnection;
  queue: string;
  /** basic.qos: unacked deliveries the broker sends at most. */
  prefetch: number;
  logger: Logger;
  /** Called for each delivery. Must not throw; if it does, the message is set aside (nack without requeue). */
  onDelivery: (d: Delivery) => void;
  /**
   * Declarations to make on each new channel before consuming (topology,
   * dead-letter queues). A string it resolves to is the queue to consume
   * on that channel instead of `queue` (a server-named queue, declared
   * anew on every channel).
   */
  declare?: (conn: ChannelModel, ch: Channel) => Promise<string | void>;
  /** Between attempts to reopen a channel that closed while the connection stayed up. */
  backoff?: Backoff;
}

interface ChannelState {
  ch: Channel;
  conn: ChannelModel;
  closed: boolean;
  /** The queue consumed on this channel. */
  queue: string;
}

/**
 * The one way a daemon takes messages from RabbitMQ. It owns the channel:
 * it opens one on every (re)connection, declares what the daemon needs,
 * sets the prefetch and consumes; it opens a new one, with backoff, when a
 * channel closes while the connection stays up (a broker-side error, a
 * cancellation because the queue was deleted); and it stops and starts
 * consuming when its user says it is full (`hold`) or has room again
 * (`release`), so no timer has to notice. Acks and nacks of deliveries
 * whose channel has gone are no-ops: the broker requeued those already.
 */
export class ResilientConsumer extends EventEmitter<ConsumerEvents> {
  private state: ChannelState | undefined;
  private tag: string | undefined;
  private consumeCall: Promise<void> | undefined;
  private cancelCall: Promise<void> | undefined;
  private opening: Promise<void> = Promise.resolve();
  private reopening: Promise<void> | undefined;
  private readonly holds = new Set<string>();
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;

  constructor(private readonly opts: ResilientConsumerOptions) {
    super();
    this.backoff = opts.backoff ?? exponentialBackoff(100, 5000);
  }

  /**
   * Consume on every connection from now on (and now, if connected). A
   * channel that cannot be opened or declared on a new connection is this
   * consumer's trouble alone: it is retried on that connection with backoff,
   * and the connection, which other consumers and publishers share, stays
   * up. Only a ConfigError (which no retry cures) fails the connection's
   * setup, so that the daemon stops with it.
   */
  async start(): Promise<void> {
    this.opts.connection.on('disconnected', () => this.lose(this.state));
    await this.opts.connection.onConnect(async (conn) => {
      try {
        await this.open(conn);
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        this.opts.logger.warn(
          { err: asError(err).message, queue: this.opts.queue },
          'could not open the consumer channel; retrying it with backoff',
        );
        void this.reopen();
      }
    });
  }

  /** True while the broker is sending deliveries. */
  get consuming(): boolean {
    return this.tag !== undefined;
  }

  /** Why it is not consuming, if it is held. */
  get heldFor(): string[] {
    return [...this.holds];
  }

  /**
   * Stop consuming until `release(reason)`. Deliveries already in hand stay
   * ackable. Holds nest by reason: consuming resumes when none is left.
   */
  hold(reason: string): Promise<void> {
    this.holds.add(reason);
    return this.cancel();
  }

  /** Undo `hold(reason)`; consume again when nothing else holds it. */
  release(reason: string): void {
    if (!this.holds.delete(reason)) return;
    if (this.holds.size === 0) void this.consume();
  }

  /** Stop consuming for good (deliveries in hand stay ackable until close). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.cancel();
  }

  /** Close the channel; anything unacked goes back to the queue. */
  async close(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    const state = this.state;
    this.lose(state);
    if (state) await state.ch.close().catch(() => undefined);
  }

  // ---- the channel -------------------------------------------------------

  /** Opens are serialised: a reopen after a channel error may race a reconnect's setup. */
  private open(conn: ChannelModel): Promise<void> {
    const next = this.opening.catch(() => undefined).then(() => this.doOpen(conn));
    this.opening = next;
    return next;
  }

  private async doOpen(conn: ChannelModel): Promise<void> {
    if (this.stopped || (this.state && !this.state.closed)) return;
    const ch = await openChannel(conn);
    const state: ChannelState = { ch, conn, closed: false, queue: this.opts.queue };
    ch.on('error', (err: Error) =>
      this.opts.logger.warn({ err: err.message, queue: state.queue }, 'AMQP channel error'),
    );
    ch.on('close', () => this.onClosed(state));
    try {
      const declared = await this.opts.declare?.(conn, ch);
      if (typeof declared === 'string') state.queue = declared;
      await ch.prefetch(this.opts.prefetch);
    } catch (err) {
      // A broker-side error has closed the channel already; anything else would leave it open.
      await ch.close().catch(() => undefined);
      throw err;
    }
    this.state = state;
    this.tag = undefined;
    await this.consume();
  }

  private consume(): Promise<void> {
    const state = this.state;
    if (!state || state.closed || this.tag !== undefined || this.stopped || this.holds.size > 0)
      return Promise.resolve();
    this.consumeCall ??= (async () => {
      await this.cancelCall;
      // Held, stopped or closed while an earlier cancel finished: whoever changed that consumes again.
      if (state.closed || this.state !== state || this.holds.size > 0 || this.stopped) return;
      try {
        const ok = await state.ch.consume(state.queue, (m) => this.deliver(state, m), {
          noAck: false,
        });
        if (this.state !== state) return;
        this.tag = ok.consumerTag;
        this.emit('consuming');
        // Held (or stopped) while basic.consume was on its way: cancel at once.
        if (this.holds.size > 0 || this.stopped) await this.cancelNow();
      } catch (err) {
        this.opts.logger.warn(
          { err: asError(err).message, queue: this.opts.queue },
          'could not start consuming; retrying on the next channel',
        );
      }
    })().finally(() => (this.consumeCall = undefined));
    return this.consumeCall;
  }

  private cancel(): Promise<void> {
    return (async () => {
      await this.consumeCall;
      if (this.holds.size === 0 && !this.stopped) return;
      await this.cancelNow();
      // Released while basic.cancel was on its way: nothing would call consume() again.
      if (this.holds.size === 0 && !this.stopped) await this.consume();
    })();
  }

  private cancelNow(): Promise<void> {
    const state = this.state;
    const tag = this.tag;
    if (!state || tag === undefined) return this.cancelCall ?? Promise.resolve();
    this.tag = undefined;
    this.cancelCall = state.ch
      .cancel(tag)
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => this.emit('idle'));
    return this.cancelCall;
  }

  private deliver(state: ChannelState, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled us (e.g. the queue was deleted): a new channel declares it again.
      this.opts.logger.warn(
        { queue: this.opts.queue },
        'consumer cancelled by the broker; reopening',
      );
      if (this.state === state) this.tag = undefined;
      this.emit('idle');
      state.ch.close().catch(() => undefined);
      return;
    }
    const delivery = makeDelivery(state, msg);
    try {
      this.opts.onDelivery(delivery);
    } catch (err) {
      // A throw here would close the channel and bring the message back first in line, to fail again.
      this.opts.logger.error(
        { err: asError(err).message, queue: this.opts.queue },
        'could not take a delivery; setting it aside',
      );
      delivery.nack(false);
    }
  }

  private lose(state: ChannelState | undefined): void {
    if (!state || state.closed) return;
    state.closed = true;
    if (this.state === state) {
      this.state = undefined;
      this.tag = undefined;
    }
    this.emit('channelLost');
  }

  private onClosed(state: ChannelState): void {
    const wasCurrent = this.state === state;
    this.lose(state);
    if (!wasCurrent || this.stopped) return;
    // After a connection loss the reconnect's setup opens the next channel.
    if (!this.opts.connection.isConnected) return;
    this.opts.logger.warn({ queue: this.opts.queue }, 'consumer channel closed; reopening it');
    void this.reopen();
  }

  /**
   * A channel closed on a connection that stayed up, or could not be opened
   * on a new one: open another, with backoff. It waits for the connection
   * if that is (still) being set up; a reconnect's own setup may open the
   * channel first, and then this stops.
   */
  private reopen(): Promise<void> {
    this.reopening ??= this.reopenLoop().finally(() => (this.reopening = undefined));
    return this.reopening;
  }

  private async reopenLoop(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt += 1) {
      await sleep(this.backoff.delay(attempt), this.abort.signal);
      if (this.stopped || this.state) return;
      const conn = await this.opts.connection.connection().catch(() => undefined);
      if (!conn || this.stopped || this.state) return;
      try {
        await this.open(conn);
        return;
      } catch (err) {
        if (err instanceof ConfigError) {
          // Not curable by retrying here: reconnect, whose setup stops the daemon with the error.
          await conn.close().catch(() => undefined);
          return;
        }
        this.opts.logger.warn(
          { err: asError(err).message, attempt, queue: this.opts.queue },
          'could not reopen the consumer channel; retrying',
        );
      }
    }
  }
}

function makeDelivery(state: ChannelState, msg: ConsumeMessage): Delivery {
  const attempt = (f: () => void): boolean => {
    if (state.closed) return false;
    try {
      f();
      return true;
    } catch {
      // The channel went away under us; the broker requeues its unacked deliveries.
      return false;
    }
  };
  return {
    msg,
    get live() {
      return !state.closed;
    },
    ack: (opts) => attempt(() => state.ch.ack(msg, opts?.upTo === true)),
    nack: (requeue) => attempt(() => state.ch.nack(msg, false, requeue)),
  };
}
