import { EventEmitter } from 'node:events';
import amqp, { type ChannelModel } from 'amqplib';
import { asError, exponentialBackoff, sleep, type Backoff } from '../async';
import type { AmqpConfig } from '../config';
import { BrokerUnavailableError, ConfigError } from '../errors';
import type { QueueType } from '../queue-type';
import type { Logger } from '../logger';
import { coalesceWrites } from './write-coalescing';

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

export interface AmqpConnectionEvents {
  connected: [ChannelModel];
  disconnected: [Error];
}

/**
 * One AMQP connection that stays up: it tries each configured host in turn
 * with backoff and jitter, and after a broker restart or a dropped
 * connection it connects again and re-runs every registered setup (declare
 * the topology, open channels, start consumers). Events: `connected`
 * (ChannelModel), `disconnected` (Error).
 */
export class AmqpConnection extends EventEmitter<AmqpConnectionEvents> {
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
        coalesceWrites(conn, this.opts.logger);
        const closed = new Promise<Error>((resolve) =>
          conn.once('close', (err?: Error) => resolve(err ?? new Error('connection closed'))),
        );
        try {
          for (const setup of this.setups) await setup(conn);
        } catch (err) {
          await conn.close().catch(() => undefined);
          if (err instanceof ConfigError) return this.fatal(err);
          this.opts.logger.warn({ err: asError(err).message }, 'AMQP setup failed; reconnecting');
          throw err;
        }
        // close() may have come while the setups ran (this.conn was not set yet, so it
        // closed nothing): close this connection here, or the process never exits.
        if (this.closing) {
          await conn.close().catch(() => undefined);
          return;
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
          err: asError(err).message,
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
