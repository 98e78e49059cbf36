import type { ConfirmPublisher } from '../core/amqp';
import type { Logger } from '../core/logger';
import { errorMessage } from '../core/async';
import { EXCHANGE } from '../core/topology';
import { PRESENCE_PERIOD_MS, PRESENCE_ROUTING_KEY, type RunnerPresence } from '../core/presence';
import type { MessageSigner } from '../core/signing';

/**
 * Announces this runner process on `cronq_presence` every period, idle or
 * not (core/presence.ts), for /system. Fire and forget: an announcement
 * that cannot be published (broker away) is skipped, never queued, and a
 * failure is logged once until one succeeds again.
 */
export class PresenceAnnouncer {
  private timer: NodeJS.Timeout | undefined;
  private failing = false;
  private readonly startedAt = new Date().toISOString();

  constructor(
    private readonly opts: {
      publisher: Pick<ConfirmPublisher, 'publish'>;
      host: string;
      queue: string;
      concurrency: number;
      version: string;
      running: () => number;
      logger: Logger;
      signer?: MessageSigner;
      periodMs?: number;
    },
  ) {}

  get periodMs(): number {
    return this.opts.periodMs ?? PRESENCE_PERIOD_MS;
  }

  start(): void {
    this.announce();
    this.timer = setInterval(() => this.announce(), this.periodMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  message(): RunnerPresence {
    return {
      instance: `${this.opts.host}.${process.pid}`,
      host: this.opts.host,
      pid: process.pid,
      queue: this.opts.queue,
      concurrency: this.opts.concurrency,
      running: this.opts.running(),
      version: this.opts.version,
      started_at: this.startedAt,
      period_ms: this.periodMs,
    };
  }

  private announce(): void {
    const msg = this.message();
    const body = Buffer.from(JSON.stringify(msg));
    const headers = this.opts.signer?.sign('presence', msg.instance, body);
    this.opts.publisher
      .publish(EXCHANGE, PRESENCE_ROUTING_KEY, body, {
        contentType: 'application/json',
        expiration: String(this.periodMs * 3),
        ...(headers ? { headers } : {}),
      })
      .then(
        () => {
          this.failing = false;
        },
        (err: unknown) => {
          if (!this.failing)
            this.opts.logger.debug({ err: errorMessage(err) }, 'presence not announced');
          this.failing = true;
        },
      );
  }
}
