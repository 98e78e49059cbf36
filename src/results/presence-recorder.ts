import type { Knex } from '../core/db';
import type { AmqpConnection } from '../core/amqp';
import { ResilientConsumer, type Delivery } from '../core/amqp/consumer';
import { errorText } from '../core/error-text';
import type { Logger } from '../core/logger';
import { declarePresenceQueue, parsePresence, type RunnerPresence } from '../core/presence';
import type { MessageSigner } from '../core/signing';

/** Announcements written at most this often, the latest per runner. */
const FLUSH_MS = 1000;
/** Most runners kept between flushes (a flood of forged instances cannot grow memory). */
const MAX_PENDING = 1000;
/** Rows of runners not heard from for this long are deleted (/system shows the last day). */
const FORGET_AFTER_MS = 86_400_000;
/** How often, and how many at most each time. */
const FORGET_EVERY_MS = 60_000;
const FORGET_BATCH = 10_000;

/**
 * Writes the runners' announcements (core/presence.ts) into `runners`, for
 * /system: consumes its own queue of the `cronq_presence` announcements (core/presence.ts), keeps the latest per runner process
 * and upserts them once a second, stamped with the database clock (so a
 * runner's clock cannot make it look alive or silent). A message it cannot
 * read is dropped (it is only a display), never requeued. A write that
 * fails is logged and skipped: the next announcement comes within seconds.
 */
export class PresenceRecorder {
  private readonly consumer: ResilientConsumer;
  private readonly pending = new Map<string, RunnerPresence>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private lastForget = 0;

  constructor(
    private readonly opts: {
      db: Knex;
      connection: AmqpConnection;
      logger: Logger;
      signer?: MessageSigner;
    },
  ) {
    this.consumer = new ResilientConsumer({
      connection: opts.connection,
      queue: '', // server-named: declarePresenceQueue gives the name
      prefetch: 100,
      logger: opts.logger,
      declare: async (_conn, ch) => declarePresenceQueue(ch),
      onDelivery: (d) => this.take(d),
    });
  }

  async start(): Promise<void> {
    await this.consumer.start();
    this.timer = setInterval(() => {
      this.flushing = this.flushing.then(() => this.flush());
    }, FLUSH_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.consumer.stop();
    await this.flushing;
  }

  private take(d: Delivery): void {
    const p = parsePresence(d.msg.content);
    d.ack();
    const refused =
      'error' in p
        ? p.error
        : this.opts.signer?.verify(
            'presence',
            p.instance,
            d.msg.content,
            d.msg.properties.headers,
            {
              maxAgeMs: 120_000,
              maxFutureMs: 60_000,
            },
          );
    if (refused || 'error' in p) {
      this.opts.logger.debug({ reason: refused }, 'runner presence dropped');
      return;
    }
    const key = `${p.instance} ${p.queue}`;
    if (this.pending.size < MAX_PENDING || this.pending.has(key)) this.pending.set(key, p);
  }

  /** Upsert the latest announcement of each runner heard since the last flush. */
  async flush(): Promise<void> {
    const rows = [...this.pending.values()];
    this.pending.clear();
    try {
      if (rows.length > 0)
        await this.opts.db.raw(
          `INSERT INTO runners (instance, queue, host, pid, concurrency, running, version, started_at, period_ms, seen_at)
           VALUES ${rows.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(3))').join(', ')}
           ON DUPLICATE KEY UPDATE host = VALUES(host), pid = VALUES(pid), concurrency = VALUES(concurrency),
             running = VALUES(running), version = VALUES(version), started_at = VALUES(started_at),
             period_ms = VALUES(period_ms), seen_at = VALUES(seen_at)`,
          rows.flatMap((r) => [
            r.instance,
            r.queue,
            r.host,
            r.pid,
            r.concurrency,
            r.running,
            r.version,
            new Date(r.started_at),
            r.period_ms,
          ]),
        );
      if (Date.now() - this.lastForget > FORGET_EVERY_MS) {
        this.lastForget = Date.now();
        await this.opts.db.raw(
          `DELETE FROM runners WHERE seen_at < UTC_TIMESTAMP(3) - INTERVAL ? SECOND LIMIT ${FORGET_BATCH}`,
          [FORGET_AFTER_MS / 1000],
        );
      }
    } catch (err) {
      // The database's own message, short: the statement and its values stay out of the log.
      this.opts.logger.warn({ err: errorText(err, 200) }, 'could not record runner presence');
    }
  }
}
