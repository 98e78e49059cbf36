import type { Probe } from './probe';
import { EventEmitter } from 'node:events';
import type { AmqpConnection, ConfirmPublisher } from '../core/amqp';
import { exponentialBackoff, sleep, type Backoff } from '../core/async';
import type { Config } from '../core/config';
import type { Knex } from '../core/db';
import { errorText } from '../core/error-text';
import type { Service } from '../core/lifecycle';
import type { Logger } from '../core/logger';
import type { MessageSigner } from '../core/signing';
import { Cycle } from './cycle';
import type { CycleContext } from './cycle-context';
import { boundedDelayMs } from './delay';
import { ControlConsumer, ControlPublisher, INJECTOR_CONTROL_BINDING } from '../core/control';
import { Dispatcher } from './dispatcher';
import type { InjectorEvents } from './events';
import { OutageTracker } from './outage';
import { clockOffsetMs } from './probe';

export interface InjectorOptions {
  db: Knex;
  connection: AmqpConnection;
  publisher: ConfirmPublisher;
  /** Signs job messages when CRONQ_MESSAGE_KEY is set (docs/security.md). */
  signer?: MessageSigner;
  settings: Config['injector'];
  /** `host.pid`, written to jobs.locked_by and runs.claimed_by. */
  claimant: string;
  logger: Logger;
  /** How long to wait for the broker's confirms of one batch before counting them as not published. */
  confirmTimeoutMs?: number;
  backoff?: Backoff;
  /** The process clock (ms); injected so tests can skew it. The database's clock decides what is due. */
  now?: () => number;
}

/** Wake this long after the earliest next_run, so `next_run < now` already holds on the database. */
const WAKE_MARGIN_MS = 2;
/** Longest back-off after a failed cycle, whatever backoff was passed in. */
const MAX_BACKOFF_MS = 60_000;
/** Batches publishing at once beside the claim. */
const MAX_IN_FLIGHT_BATCHES = 4;

/**
 * The injector loop: run a cycle (cycle.ts), then sleep until the earliest
 * next_run, at most maxPollMs; while the broker is down, wait for it
 * without claiming. It never throws: database and broker outages are
 * logged once (outage.ts), backed off with jitter and waited out. What
 * happens is emitted as InjectorEvents (events.ts).
 */
export class Injector extends EventEmitter<InjectorEvents> implements Service {
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;
  private stopping = false;
  private readonly backoff: Backoff;
  private readonly dispatcher: Dispatcher;
  private readonly cycle: Cycle;
  private readonly outages: OutageTracker;
  private readonly now: () => number;
  private idleContention = 0;
  /** Published runs already reported by a cycle:done. */
  private publishedReported = 0;
  private readonly counters = { claimedJobs: 0, scheduleErrors: 0 };
  /** Wake orders (*Run now*) on `cronq.control`: claim now instead of at the next poll. */
  private readonly control: ControlConsumer;
  private readonly controlOut: ControlPublisher;
  /** A wake came: the next sleep is skipped. Many wakes before it coalesce into one cycle. */
  private woken = false;
  private wakeCtl = new AbortController();

  constructor(private readonly opts: InjectorOptions) {
    super();
    this.backoff = opts.backoff ?? exponentialBackoff(250, 15_000);
    this.now = opts.now ?? Date.now;
    this.dispatcher = new Dispatcher({
      db: opts.db,
      publisher: opts.publisher,
      signer: opts.signer,
      logger: opts.logger,
      confirmTimeoutMs: opts.confirmTimeoutMs ?? 10_000,
      maxInFlightBatches: MAX_IN_FLIGHT_BATCHES,
      brokerReady: () => opts.connection.isConnected,
      dbNow: () => {
        const p = this.cycle.lastProbe;
        return this.now() + (p ? clockOffsetMs(p) : 0);
      },
    });
    this.dispatcher.on('batch:committed', (e) => this.emit('batch:committed', e));
    this.dispatcher.on('batch:confirmed', (e) => this.emit('batch:confirmed', e));
    this.outages = new OutageTracker(opts.logger, this);
    this.controlOut = new ControlPublisher(opts.connection, opts.publisher);
    const ctx: CycleContext = {
      control: this.controlOut,
      db: opts.db,
      settings: opts.settings,
      claimant: opts.claimant,
      logger: opts.logger,
      dispatcher: this.dispatcher,
      events: this,
      now: this.now,
      stopping: () => this.stopping,
      counters: this.counters,
    };
    this.cycle = new Cycle(ctx);
    this.control = new ControlConsumer({
      connection: opts.connection,
      logger: opts.logger,
      bindings: [INJECTOR_CONTROL_BINDING],
    });
    this.control.on('control:wake', () => this.wake());
    this.control.on('control:listening', () => this.emit('control:listening'));
  }

  async start(): Promise<void> {
    await this.controlOut.start();
    await this.control.start();
    this.loop ??= this.run();
  }

  /** Claim now: ends the current sleep, or skips the next one when a cycle is running. */
  wake(): void {
    this.emit('wake');
    if (this.woken) return;
    this.woken = true;
    this.wakeCtl.abort();
  }

  /** Sleep `ms`, unless stopped or woken (a wake that came during the cycle ends it at once). */
  private async nap(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      this.wakeCtl = new AbortController();
      return;
    }
    await sleep(ms, AbortSignal.any([this.abort.signal, this.wakeCtl.signal]));
    if (this.woken) {
      this.woken = false;
      this.wakeCtl = new AbortController();
    }
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.abort.abort();
      await this.loop;
      await this.control.stop();
    })();
    return this.stopped;
  }

  status(): Record<string, unknown> {
    const p = this.cycle.lastProbe;
    return {
      running: this.loop !== undefined && !this.stopping,
      brokerConnected: this.opts.connection.isConnected,
      outage: this.outages.kind ?? null,
      clockOffsetMs: p ? Math.round(clockOffsetMs(p)) : null,
      ownUnpublished: this.dispatcher.unpublished.size,
      ...this.allCounters(),
    };
  }

  private allCounters() {
    return { ...this.counters, errors: this.outages.errors, ...this.dispatcher.counters };
  }

  private get log(): Logger {
    return this.opts.logger;
  }

  private async run(): Promise<void> {
    this.log.info({ claimant: this.opts.claimant, ...this.opts.settings }, 'injector running');
    let attempt = 0;
    while (!this.stopping) {
      try {
        if (!this.opts.connection.isConnected) {
          await this.waitForBroker();
          continue;
        }
        const r = await this.cycle.run();
        this.outages.succeeded();
        attempt = 0;
        this.cycleDone(r.claimed);
        if (this.stopping) break;
        if (r.full || r.worked) {
          this.idleContention = 0;
          continue;
        }
        if (r.contended) {
          // Another injector holds the due rows; look again shortly, not at once.
          await this.nap(
            boundedDelayMs(
              5 * 2 ** Math.min(this.idleContention++, 8) + Math.random() * 10,
              this.opts.settings.maxPollMs,
            ),
          );
          continue;
        }
        this.idleContention = 0;
        await this.nap(this.sleepMs());
      } catch (err) {
        if (this.stopping) break;
        await this.backOff(err, attempt++);
      }
    }
    // Finish the batches in hand: their confirms and published_at.
    await this.dispatcher
      .idle()
      .catch((err: unknown) =>
        this.log.warn(
          { err: errorText(err) },
          'could not record the last confirms; their runs will be published again',
        ),
      );
    const counters = this.allCounters();
    this.log.info(counters, 'injector stopped');
    this.emit('stopped', {
      claimedJobs: counters.claimedJobs,
      published: counters.published,
      errors: counters.errors,
    });
  }

  /** The last probe of the database (when the earliest job is due, and its clock). */
  get lastProbe(): Probe | undefined {
    return this.cycle.lastProbe;
  }

  private cycleDone(claimed: number): void {
    const published = this.dispatcher.counters.published;
    this.emit('cycle:done', { claimed, published: published - this.publishedReported });
    this.publishedReported = published;
  }

  /**
   * Until the earliest next_run less the lead (or, for a job the claim
   * left waiting, its occurrence), or the earliest retry's not_before
   * (retries are not published ahead), by the database's clock; at most
   * maxPollMs.
   */
  private sleepMs(): number {
    const { maxPollMs: max, leadMs } = this.opts.settings;
    const p = this.cycle.lastProbe;
    if (!p) return max;
    const wakes: number[] = [];
    // A job left waiting for its occurrence is due within the lead already:
    // wake at the occurrence, not at once.
    const waiting = this.cycle.waitingUntil?.getTime() ?? -Infinity;
    if (p.nextDue !== null) wakes.push(Math.max(p.nextDue.getTime() - leadMs, waiting));
    if (p.nextRetry !== null) wakes.push(p.nextRetry.getTime());
    if (wakes.length === 0) return max;
    const dueLocal = p.localAt + (Math.min(...wakes) - p.dbNow.getTime()) + WAKE_MARGIN_MS;
    return boundedDelayMs(dueLocal - this.now(), max);
  }

  private async waitForBroker(): Promise<void> {
    if (this.opts.connection.connectCount === 0) {
      this.log.debug('waiting for the first broker connection before claiming');
    } else {
      this.outages.brokerDown();
    }
    await new Promise<void>((resolve) => {
      const done = () => {
        this.opts.connection.off('connected', done);
        this.abort.signal.removeEventListener('abort', done);
        resolve();
      };
      this.opts.connection.on('connected', done);
      this.abort.signal.addEventListener('abort', done);
      if (this.opts.connection.isConnected || this.abort.signal.aborted) done();
    });
  }

  private async backOff(err: unknown, attempt: number): Promise<void> {
    const delay = boundedDelayMs(this.backoff.delay(attempt), MAX_BACKOFF_MS);
    this.outages.failed(err, delay);
    await sleep(delay, this.abort.signal);
  }
}
