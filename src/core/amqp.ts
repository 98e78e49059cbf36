import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import amqp, {
  type ChannelModel,
  type ConfirmChannel,
  type Options,
  type ConsumeMessage,
} from 'amqplib';
import type { AmqpConfig } from './config';
import { BrokerUnavailableError, ConfigError } from './errors';
import type { QueueType } from './queue-type';
import type { Logger } from './logger';

export type { ChannelModel, ConfirmChannel, ConsumeMessage };

export interface Backoff {
  /** Delay before attempt `attempt` (0-based), with full jitter. */
  delay(attempt: number): number;
}

/** Exponential backoff with full jitter and a cap (AWS architecture blog's "full jitter"). */
export function exponentialBackoff(
  baseMs = 250,
  capMs = 15_000,
  random: () => number = Math.random,
): Backoff {
  return {
    delay(attempt) {
      const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 20));
      return Math.round(ceiling / 2 + (random() * ceiling) / 2);
    },
  };
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** amqplib connect URL for one host of the list (credentials URL-encoded). */
export function connectUrl(cfg: AmqpConfig, index: number): string {
  const h = cfg.hosts[index % cfg.hosts.length]!;
  const host = h.hostname.includes(':') ? `[${h.hostname}]` : h.hostname;
  const q = new URLSearchParams(cfg.params);
  if (cfg.heartbeat !== undefined) q.set('heartbeat', String(cfg.heartbeat));
  const qs = q.toString();
  return `amqp://${encodeURIComponent(cfg.username)}:${encodeURIComponent(cfg.password)}@${host}:${h.port}/${encodeURIComponent(cfg.vhost)}${qs ? `?${qs}` : ''}`;
}

export interface AmqpConnectionOptions {
  logger: Logger;
  /** Shown to the broker as connection_name, so an operator sees who is connected. */
  name: string;
  backoff?: Backoff;
  /**
   * Called when a setup fails with a ConfigError (a queue of the other
   * type): reconnecting cannot cure it. By default the error is printed as
   * one line on stderr and the process exits with its code (2).
   */
  onFatal?: (err: ConfigError) => void;
}

type Setup = (conn: ChannelModel) => Promise<void>;

/**
 * One AMQP connection that stays up: it tries each configured host in turn
 * with backoff and jitter, and after a broker restart or a dropped
 * connection it connects again and re-runs every registered setup (declare
 * the topology, open channels, start consumers). Events: `connected`
 * (ChannelModel), `disconnected` (Error).
 */
export class AmqpConnection extends EventEmitter {
  private conn: ChannelModel | undefined;
  private readonly setups: Setup[] = [];
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private waiters: Array<(c: ChannelModel) => void> = [];
  private hostIndex = 0;
  private closing = false;
  private readonly backoff: Backoff;
  /** Number of connections made so far (1 after the first). */
  connectCount = 0;

  constructor(
    private readonly cfg: AmqpConfig,
    private readonly opts: AmqpConnectionOptions,
  ) {
    super();
    this.backoff = opts.backoff ?? exponentialBackoff();
  }

  /** CRONQ_QUEUE_TYPE: the type every queue of this connection is declared with. */
  get queueType(): QueueType {
    return this.cfg.queueType ?? 'classic';
  }

  get vhost(): string {
    return this.cfg.vhost;
  }

  /** Run `setup` on every (re)connection, and now if already connected. */
  async onConnect(setup: Setup): Promise<void> {
    this.setups.push(setup);
    if (this.conn) await setup(this.conn);
  }

  /** Start connecting in the background. Idempotent. */
  start(): void {
    if (!this.loop) this.loop = this.connectLoop();
  }

  get isConnected(): boolean {
    return this.conn !== undefined;
  }

  /** The live connection, waiting for one if the broker is away (rejects once closed). */
  async connection(): Promise<ChannelModel> {
    this.start();
    if (this.conn) return this.conn;
    if (this.closing) throw new BrokerUnavailableError('AMQP connection is closed');
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private async connectLoop(): Promise<void> {
    let attempt = 0;
    let outageLogged = false;
    while (!this.closing) {
      const index = this.hostIndex % this.cfg.hosts.length;
      const host = this.cfg.hosts[index]!;
      try {
        const conn = await amqp.connect(connectUrl(this.cfg, index), {
          clientProperties: { connection_name: this.opts.name },
          timeout: 5000,
        });
        if (this.closing) {
          await conn.close().catch(() => undefined);
          return;
        }
        conn.on('error', (err: Error) =>
          this.opts.logger.warn({ err: err.message }, 'AMQP connection error'),
        );
        coalesceWrites(conn);
        const closed = new Promise<Error>((resolve) =>
          conn.once('close', (err?: Error) => resolve(err ?? new Error('connection closed'))),
        );
        try {
          for (const setup of this.setups) await setup(conn);
        } catch (err) {
          await conn.close().catch(() => undefined);
          if (err instanceof ConfigError) return this.fatal(err);
          this.opts.logger.warn({ err: (err as Error).message }, 'AMQP setup failed; reconnecting');
          throw err;
        }
        this.conn = conn;
        this.connectCount += 1;
        attempt = 0;
        this.opts.logger.info(
          {
            host: `${host.hostname}:${host.port}`,
            vhost: this.cfg.vhost,
            reconnect: this.connectCount > 1,
          },
          'AMQP connected',
        );
        outageLogged = false;
        const waiters = this.waiters;
        this.waiters = [];
        for (const w of waiters) w(conn);
        this.emit('connected', conn);
        const err = await closed;
        this.conn = undefined;
        if (this.closing) return;
        this.opts.logger.warn({ err: err.message }, 'AMQP connection lost; reconnecting');
        this.emit('disconnected', err);
      } catch (err) {
        if (this.closing) return;
        this.hostIndex += 1;
        const delay = this.backoff.delay(attempt++);
        const next = new Date(Date.now() + delay).toISOString();
        const fields = {
          host: `${host.hostname}:${host.port}`,
          err: (err as Error).message,
          nextRetryAt: next,
        };
        // One warning per outage; every further attempt only at debug level.
        if (!outageLogged)
          this.opts.logger.warn(fields, 'AMQP broker unavailable; retrying with backoff');
        else this.opts.logger.debug(fields, 'AMQP broker still unavailable');
        outageLogged = true;
        await sleep(delay, this.abort.signal);
      }
    }
  }

  private fatal(err: ConfigError): void {
    this.closing = true;
    this.opts.logger.fatal({ err: err.message }, 'AMQP setup cannot succeed; stopping');
    if (this.opts.onFatal) return this.opts.onFatal(err);
    const command = this.opts.name.split(' ')[0] ?? 'cronq';
    process.stderr.write(`${command}: ${err.message}\n`);
    process.exit(err.exitCode);
  }

  /** Close the connection and stop reconnecting. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return this.loop?.then(() => undefined);
    this.closing = true;
    this.abort.abort();
    const conn = this.conn;
    this.conn = undefined;
    if (conn) await conn.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
  }
}

export interface PublishResult {
  /** False when the broker returned the message: no queue is bound for its routing key. */
  routed: boolean;
}

interface Pending {
  messageId: string;
  exchange: string;
  routingKey: string;
  resolve: (r: PublishResult) => void;
  reject: (e: Error) => void;
  returned: boolean;
}

/**
 * Publishes with publisher confirms on one confirm channel of an
 * AmqpConnection. `publish` resolves once the broker has taken
 * responsibility for the message (ack), and says whether it was routed
 * (`mandatory` returns arrive before the ack); it rejects on a nack or when
 * the channel or connection closes first, so the caller knows the message
 * may not have been stored.
 */
export class ConfirmPublisher {
  private channel: ConfirmChannel | undefined;
  private opening: Promise<ConfirmChannel> | undefined;
  /** Unconfirmed publishes in the order sent; the same message id may be in flight twice (a republish). */
  private readonly pending = new Set<Pending>();

  constructor(
    private readonly connection: AmqpConnection,
    private readonly logger: Logger,
  ) {
    connection.on('disconnected', () =>
      this.dropChannel(new BrokerUnavailableError('AMQP connection lost before confirm')),
    );
  }

  private dropChannel(err: Error): void {
    this.channel = undefined;
    this.opening = undefined;
    for (const p of this.pending) p.reject(err);
    this.pending.clear();
  }

  private async getChannel(): Promise<ConfirmChannel> {
    if (this.channel) return this.channel;
    if (!this.opening) {
      this.opening = (async () => {
        const conn = await this.connection.connection();
        const ch = await conn.createConfirmChannel();
        ch.on('error', (err: Error) =>
          this.logger.warn({ err: err.message }, 'AMQP publish channel error'),
        );
        ch.on('close', () => {
          if (this.channel === ch)
            this.dropChannel(new BrokerUnavailableError('AMQP channel closed before confirm'));
        });
        ch.on('return', (msg: ConsumeMessage) => {
          const id = msg.properties.messageId as string | undefined;
          // A return precedes the ack of its publish: mark the oldest unconfirmed one of that id and route.
          for (const p of this.pending) {
            if (
              p.messageId === id &&
              p.exchange === msg.fields.exchange &&
              p.routingKey === msg.fields.routingKey &&
              !p.returned
            ) {
              p.returned = true;
              break;
            }
          }
        });
        this.channel = ch;
        return ch;
      })();
      this.opening.catch(() => {
        this.opening = undefined;
      });
    }
    return this.opening;
  }

  /**
   * Publish and resolve when the broker confirms. With the channel open the
   * message is handed to it synchronously, before this returns (so a caller
   * can order it before an ack it sends next on the same connection).
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    options: Options.Publish = {},
  ): Promise<PublishResult> {
    if (this.channel) return this.publishOn(this.channel, exchange, routingKey, body, options);
    return this.getChannel().then((ch) => this.publishOn(ch, exchange, routingKey, body, options));
  }

  private publishOn(
    ch: ConfirmChannel,
    exchange: string,
    routingKey: string,
    body: Buffer,
    options: Options.Publish,
  ): Promise<PublishResult> {
    const messageId = options.messageId ?? randomUUID();
    return new Promise<PublishResult>((resolve, reject) => {
      const entry: Pending = { messageId, exchange, routingKey, resolve, reject, returned: false };
      this.pending.add(entry);
      try {
        ch.publish(
          exchange,
          routingKey,
          body,
          { persistent: true, contentType: 'application/json', ...options, messageId },
          (err) => {
            if (!this.pending.delete(entry)) return;
            if (err)
              reject(
                new BrokerUnavailableError('broker refused the message (nack)', { cause: err }),
              );
            else resolve({ routed: !entry.returned });
          },
        );
      } catch (err) {
        this.pending.delete(entry);
        reject(new BrokerUnavailableError('publish failed', { cause: err }));
      }
    });
  }

  /** Messages sent and not yet confirmed. */
  get inFlight(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    const ch = this.channel;
    this.channel = undefined;
    if (ch) await ch.close().catch(() => undefined);
  }
}

/**
 * amqplib's multiplexer writes each frame it takes from a channel to the
 * socket on its own (one syscall per ack, publish or confirm). Corking the
 * socket for one pass of the multiplexer turns a pass into one writev: under
 * load, dozens of frames per syscall. Frame order and content are unchanged.
 * Relies on amqplib's `connection.muxer._readIncoming` and
 * `connection.stream` (amqplib 0.10 / 2.x, pinned by the lock file); if
 * they are not there, nothing is changed.
 */
function coalesceWrites(model: ChannelModel): void {
  const inner = (model as unknown as { connection?: { muxer?: unknown; stream?: unknown } })
    .connection;
  const mux = inner?.muxer as { _readIncoming?: () => void } | undefined;
  const stream = inner?.stream as { cork?: () => void; uncork?: () => void } | undefined;
  const pass = mux?._readIncoming;
  if (!mux || typeof pass !== 'function' || !stream?.cork || !stream.uncork) return;
  mux._readIncoming = function (this: unknown) {
    stream.cork!();
    try {
      pass.call(mux);
    } finally {
      stream.uncork!();
    }
  };
}
