import { EventEmitter } from 'node:events';
import type { AmqpConnection, ConfirmPublisher } from '../core/amqp';
import { errorMessage, exponentialBackoff, sleep, within, type Backoff } from '../core/async';
import type { Logger } from '../core/logger';
import type { ResultMessage } from '../core/messages';
import type { MessageSigner } from '../core/signing';
import { EXCHANGE, RESULTS_ROUTING_KEY } from '../core/topology';
import type { OutboxEvents } from './events';
import { ResultBuffer, type BufferedResult } from './result-buffer';
import { adoptSpills, removeSpill, writeSpill } from './result-spill';

export interface ResultOutboxOptions {
  /** Spill folder: unconfirmed results are saved here on stop, and orphans' are taken over on start. */
  dir: string;
  maxBytes: number;
  logger: Logger;
  /** Signs each result as it is published (docs/security.md). */
  signer?: MessageSigner;
  /** Between attempts to publish the backlog again after a failure. */
  backoff?: Backoff;
}

/**
 * Every result the runner sends goes through here. Results are published
 * with confirms, in the order they were sent; those not yet confirmed stay
 * in the buffer (result-buffer.ts: bounded, heartbeats coalesced) and are
 * published again, in order, once the broker is back (AmqpConnection
 * reconnects by itself). A republish after a confirm that never came is
 * harmless: the message id is the same (run id + type), and the results
 * side writes each (run, type) once.
 *
 * Over its byte limit it emits `over-limit`, and `under-limit` once it is
 * back under: the runner takes no new jobs in between. While the broker is
 * away no new run starts (no delivery arrives), so what can pile up is
 * bounded by the runs already going.
 *
 * On stop, results still unconfirmed after the flush grace are written to a
 * spill file (result-spill.ts); the next runner started with the same
 * folder publishes them first.
 */
export class ResultOutbox extends EventEmitter<OutboxEvents> {
  private readonly buffer: ResultBuffer;
  private recovering = false;
  private broken = false;
  private stopped = false;
  private over = false;
  private readonly backoff: Backoff;
  private idleWaiters: Array<() => void> = [];
  private readonly abort = new AbortController();
  published = 0;
  /** Spill files being published; removed once all their results are confirmed. */
  private readonly adopted = new Set<string>();

  constructor(
    private readonly publisher: Pick<ConfirmPublisher, 'publish'>,
    private readonly connection: Pick<AmqpConnection, 'connection' | 'isConnected'>,
    private readonly opts: ResultOutboxOptions,
  ) {
    super();
    this.buffer = new ResultBuffer(opts.maxBytes);
    this.backoff = opts.backoff ?? exponentialBackoff(200, 5000);
  }

  /** Load results spilled by runners that are no longer alive, ahead of anything new. */
  async start(): Promise<void> {
    for (const spill of await adoptSpills(this.opts.dir, this.opts.logger)) {
      const confirmed = spill.records.map(
        (rec) =>
          new Promise<void>((resolve) =>
            this.buffer.push({
              messageId: rec.messageId,
              runId: rec.runId,
              type: rec.type,
              body: Buffer.from(rec.body, 'utf8'),
              inFlight: false,
              waiters: [resolve],
            }),
          ),
      );
      // The file goes only when all its results are confirmed, so a crash now loses nothing.
      this.adopted.add(spill.file);
      void Promise.all(confirmed).then(async () => {
        if (!this.adopted.delete(spill.file)) return;
        await removeSpill(spill.file);
        this.emit('recovered:confirmed', { file: spill.file });
      });
      this.opts.logger.info(
        { file: spill.name, results: confirmed.length },
        'publishing results a previous runner could not deliver',
      );
      this.emit('recovered', { file: spill.file, results: confirmed.length });
    }
    this.checkLimit();
    this.kick();
  }

  /** Queue a result; resolves when the broker has confirmed it (or, for a heartbeat, when it is superseded or dropped). */
  send(msg: ResultMessage, messageId: string): Promise<void> {
    const body = Buffer.from(JSON.stringify(msg));
    return new Promise((resolve) => {
      this.buffer.add({ messageId, runId: msg.run_id, type: msg.type, body }, resolve);
      this.checkLimit();
      this.kick();
    });
  }

  get overLimit(): boolean {
    return this.buffer.overLimit;
  }

  get size(): number {
    return this.buffer.size;
  }

  status(): Record<string, unknown> {
    return {
      buffered: this.buffer.size,
      bufferedBytes: this.buffer.bytes,
      published: this.published,
      droppedHeartbeats: this.buffer.dropped,
      brokerAway: this.broken,
    };
  }

  /** Announce crossing the limit, either way, once per crossing. */
  private checkLimit(): void {
    const over = this.buffer.overLimit;
    if (over === this.over) return;
    this.over = over;
    const figures = { bytes: this.buffer.bytes, limit: this.buffer.maxBytes };
    if (over) {
      this.opts.logger.error(
        figures,
        'result buffer is over its limit; taking no new jobs until it drains',
      );
      this.emit('over-limit', figures);
    } else {
      this.opts.logger.info(figures, 'result buffer is under its limit again; taking jobs');
      this.emit('under-limit', figures);
    }
  }

  /**
   * While the broker is reachable, every result is published the moment it
   * is sent (one channel keeps publish order). After a failure nothing new
   * is published until `recover` has waited for the connection and sent the
   * whole unconfirmed backlog again from its head, so order is kept across
   * an outage.
   */
  private kick(): void {
    if (this.stopped) return;
    if (this.broken) {
      this.recover();
      return;
    }
    this.publishUnsent();
  }

  private publishUnsent(): void {
    for (const e of this.buffer.entries) if (!e.inFlight) this.publishOne(e);
  }

  private recover(): void {
    if (this.recovering || this.stopped) return;
    this.recovering = true;
    void (async () => {
      let attempt = 0;
      try {
        while (this.broken && !this.stopped) {
          await sleep(this.backoff.delay(attempt++), this.abort.signal);
          if (this.stopped) return;
          await this.connection.connection().catch(() => undefined);
          if (this.stopped || !this.connection.isConnected) continue;
          this.broken = false;
          this.publishUnsent();
        }
      } catch (err) {
        this.opts.logger.error(
          { err: errorMessage(err) },
          'result republish loop failed; retrying',
        );
      } finally {
        this.recovering = false;
        if (this.broken && !this.stopped) this.recover();
      }
    })();
  }

  private publishOne(e: BufferedResult): void {
    e.inFlight = true;
    this.publisher
      .publish(EXCHANGE, RESULTS_ROUTING_KEY, e.body, {
        // Signed at each publish, so a result kept through an outage is signed when it is finally sent.
        ...(this.opts.signer ? { headers: this.opts.signer.sign('result', e.runId, e.body) } : {}),
        messageId: e.messageId,
        // A heartbeat only matters while fresh; losing one in a broker restart is harmless, so it skips the disk.
        persistent: e.type !== 'heartbeat',
        contentType: 'application/json',
        type: e.type,
      })
      .then(
        () => {
          this.buffer.confirmed(e);
          this.published += 1;
          if (this.buffer.size === 0) this.notifyIdle();
          this.checkLimit();
        },
        (err: unknown) => {
          e.inFlight = false;
          if (!this.broken)
            this.opts.logger.warn(
              { err: errorMessage(err), buffered: this.buffer.size },
              'result not confirmed; keeping it to publish again when the broker is back',
            );
          this.broken = true;
        },
      )
      .finally(() => {
        if (this.broken) this.recover();
      });
  }

  private notifyIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Resolves when every queued result is confirmed, or after `timeoutMs`; true when drained. */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.buffer.size === 0) return true;
    await within(new Promise<void>((resolve) => this.idleWaiters.push(resolve)), timeoutMs);
    return this.buffer.size === 0;
  }

  private async dropAdopted(): Promise<void> {
    for (const file of this.adopted) await removeSpill(file);
    this.adopted.clear();
  }

  /** Stop publishing; write what is still unconfirmed to a spill file for the next runner. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    const left = this.buffer.entries;
    if (left.length === 0) {
      await this.dropAdopted();
      return;
    }
    try {
      const file = await writeSpill(
        this.opts.dir,
        left.map((e) => ({
          messageId: e.messageId,
          runId: e.runId,
          type: e.type,
          body: e.body.toString('utf8'),
        })),
      );
      this.opts.logger.warn(
        { file, results: left.length },
        'results not confirmed before stop were saved; the next runner start publishes them',
      );
      // Their unconfirmed results are in the new file now.
      await this.dropAdopted();
      this.emit('spilled', { file, results: left.length });
    } catch (err) {
      this.opts.logger.error(
        { err: errorMessage(err), results: left.length },
        'could not save unconfirmed results; they are lost',
      );
    }
  }
}
