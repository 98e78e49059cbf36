import type { AmqpConnection, ConfirmPublisher } from '../core/amqp';
import { exponentialBackoff, sleep, type Backoff } from '../core/async';
import type { Config } from '../core/config';
import type { Knex } from '../core/db';
import { BrokerUnavailableError, isTransientDbError } from '../core/errors';
import type { Service } from '../core/lifecycle';
import type { Logger } from '../core/logger';
import type { MessageSigner } from '../core/signing';
import { claimDueJobs } from './claim';
import { boundedDelayMs } from './delay';
import { errorFields, errorText } from '../core/error-text';
import { Dispatcher } from './dispatcher';
import { retakeUnpublished } from './outbox';
import { clockOffsetMs, probe, type Probe } from './probe';

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
  /** TEST ONLY: pause this long after a claim commits, before publishing (to kill the process there). */
  testPauseAfterCommitMs?: number;
  /** TEST ONLY: pause this long after the confirms, before published_at is written. */
  testPauseAfterConfirmMs?: number;
}

/** Clock difference between the database and this process above which a warning is logged. */
const SKEW_WARN_MS = 1000;
/** Wake this long after the earliest next_run, so `next_run < now` already holds on the database. */
const WAKE_MARGIN_MS = 2;
/** Longest back-off after a failed cycle, whatever backoff was passed in. */
const MAX_BACKOFF_MS = 60_000;
/** Batches claimed back to back before the loop probes (and sweeps) again. */
const MAX_BATCHES_PER_CYCLE = 50;
/** Claim transactions side by side while a backlog lasts. */
const CLAIM_CONCURRENCY = 2;
/** Batches publishing at once beside the claim. */
const MAX_IN_FLIGHT_BATCHES = 4;

interface CycleResult {
  /** Runs were created or retaken. */
  worked: boolean;
  /** A query returned a full batch: more is due right now. */
  full: boolean;
  /** Something was due but every row was locked by another injector. */
  contended: boolean;
}

/**
 * The injector loop. Each cycle: retry this process's own unconfirmed
 * publishes (once the broker is back), probe the database (one query),
 * retake stale unpublished runs, claim due jobs in batches, publish, and
 * record the outcome; then sleep until the earliest next_run, at most
 * maxPollMs. It never throws: database and broker outages are logged once,
 * backed off with jitter and waited out.
 */
export class Injector implements Service {
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;
  private stopping = false;
  private readonly backoff: Backoff;
  private readonly dispatcher: Dispatcher;
  private readonly now: () => number;
  private lastProbe: Probe | undefined;
  private outage: 'database' | 'broker' | 'error' | undefined;
  private skewWarned = false;
  private idleContention = 0;
  /** The last claim found due jobs: claim again before probing. */
  private claimStreak = false;
  private readonly counters = { claimedJobs: 0, scheduleErrors: 0, errors: 0 };

  constructor(private readonly opts: InjectorOptions) {
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
      testPauseAfterCommitMs: opts.testPauseAfterCommitMs,
      testPauseAfterConfirmMs: opts.testPauseAfterConfirmMs,
    });
  }

  async start(): Promise<void> {
    this.loop ??= this.run();
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.abort.abort();
      await this.loop;
    })();
    return this.stopped;
  }

  status(): Record<string, unknown> {
    return {
      running: this.loop !== undefined && !this.stopping,
      brokerConnected: this.opts.connection.isConnected,
      outage: this.outage ?? null,
      clockOffsetMs: this.lastProbe ? Math.round(clockOffsetMs(this.lastProbe)) : null,
      ownUnpublished: this.dispatcher.unpublished.size,
      ...this.counters,
      ...this.dispatcher.counters,
    };
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
        const r = await this.cycle();
        if (this.outage) this.log.info({ outage: this.outage }, 'injector resumed');
        this.outage = undefined;
        attempt = 0;
        if (this.stopping) break;
        if (r.full || r.worked) {
          this.idleContention = 0;
          continue;
        }
        if (r.contended) {
          // Another injector holds the due rows; look again shortly, not at once.
          await sleep(
            boundedDelayMs(
              5 * 2 ** Math.min(this.idleContention++, 8) + Math.random() * 10,
              this.opts.settings.maxPollMs,
            ),
            this.abort.signal,
          );
          continue;
        }
        this.idleContention = 0;
        await sleep(this.sleepMs(), this.abort.signal);
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
    this.log.info({ ...this.counters, ...this.dispatcher.counters }, 'injector stopped');
  }

  /** Until the earliest next_run (by the database's clock) less the lead, at most maxPollMs. */
  private sleepMs(): number {
    const { maxPollMs: max, leadMs } = this.opts.settings;
    const p = this.lastProbe;
    if (!p || p.nextDue === null) return max;
    const dueLocal =
      p.localAt + (p.nextDue.getTime() - p.dbNow.getTime()) - leadMs + WAKE_MARGIN_MS;
    return boundedDelayMs(dueLocal - this.now(), max);
  }

  private async waitForBroker(): Promise<void> {
    if (this.opts.connection.connectCount === 0) {
      this.log.debug('waiting for the first broker connection before claiming');
    } else if (this.outage !== 'broker') {
      this.outage = 'broker';
      this.log.warn('broker unavailable: claims paused until it is back (due jobs stay due)');
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
    const nextRetryAt = new Date(Date.now() + delay).toISOString();
    const kind =
      err instanceof BrokerUnavailableError
        ? 'broker'
        : isTransientDbError(err)
          ? 'database'
          : 'error';
    const { stack, ...fields } = { ...errorFields(err), nextRetryAt };
    this.counters.errors += 1;
    if (kind === 'error') {
      this.log.error({ ...fields, stack }, 'injector cycle failed; retrying');
    } else if (this.outage !== kind) {
      this.log.warn(
        fields,
        kind === 'database'
          ? 'database unavailable; retrying with backoff'
          : 'publishing failed; retrying with backoff',
      );
    } else {
      this.log.debug(fields, `${kind} still unavailable`);
    }
    this.outage = kind;
    await sleep(delay, this.abort.signal);
  }

  private async cycle(): Promise<CycleResult> {
    const { db, settings, claimant } = this.opts;
    const result: CycleResult = { worked: false, full: false, contended: false };

    // A publish of an earlier cycle failed: surface it here so the loop backs off.
    const failed = this.dispatcher.takeError();
    if (failed !== undefined) throw failed;
    await this.dispatcher.flushMarks();
    const own = this.dispatcher.unpublished;
    if (own.size > 0) {
      await this.dispatcher.idle();
      const ids = [...own].slice(0, settings.batchSize);
      const retaken = await retakeUnpublished(
        db,
        { runIds: ids },
        { batchSize: settings.batchSize, claimant },
      );
      // Those not retaken were published by someone else meanwhile, or are being retaken by them.
      for (const id of ids) own.delete(id);
      if (retaken.runs.length > 0) {
        this.log.info(
          { runs: retaken.runs.length },
          'publishing runs again after a failed publish (same run ids)',
        );
        await this.dispatcher.publishNow(retaken.runs, true);
        result.worked = true;
      }
      if (own.size > 0) result.full = true;
    }

    // While claims keep finding due jobs (a stream of them), claim again at
    // once instead of probing first; probe when a claim came back empty, and
    // at least every maxPollMs so run-now flags and stale runs are seen.
    const last = this.lastProbe;
    const skipProbe =
      this.claimStreak && last !== undefined && this.now() - last.localAt < settings.maxPollMs;
    if (skipProbe) {
      const claimed = await this.claimAndPublish(false);
      this.claimStreak = claimed.jobs > 0;
      result.worked = claimed.jobs > 0;
      result.full = claimed.full;
      return result;
    }

    const p = await probe(db, settings.republishAfterMs, this.now);
    this.lastProbe = p;
    this.checkClock(p);

    if (p.stale && !this.stopping) {
      const retaken = await retakeUnpublished(
        db,
        { olderThanMs: settings.republishAfterMs },
        { batchSize: settings.batchSize, claimant },
      );
      if (retaken.runs.length > 0) {
        this.log.warn(
          { runs: retaken.runs.length },
          'publishing runs whose publish was never confirmed (same run ids)',
        );
        await this.dispatcher.publishNow(retaken.runs, true);
      }
      if (retaken.runs.length > 0 || retaken.orphaned > 0) result.worked = true;
      else result.contended = true;
      result.full ||= retaken.full;
    }

    const due = p.nextDue !== null && p.nextDue.getTime() < p.dbNow.getTime() + settings.leadMs;
    this.claimStreak = false;
    if ((due || p.runNow) && !this.stopping) {
      const claimed = await this.claimAndPublish(p.runNow);
      if (claimed.jobs > 0) {
        this.claimStreak = true;
        result.worked = true;
        result.full ||= claimed.full;
      } else {
        result.contended = true;
      }
    }
    return result;
  }

  /**
   * Claim batch after batch while they come back full. Each batch is
   * published while the next one is claimed (and while the next cycle
   * runs), so the database and the broker work at the same time; after a
   * full first batch, CLAIM_CONCURRENCY transactions claim side by side
   * (SKIP LOCKED gives them disjoint rows), so a backlog uses more than one
   * database thread. Once a publish has failed no more batches are claimed,
   * so a broker that went away does not turn more due jobs into unpublished
   * runs: they stay due and coalesce into one run each when it is back.
   */
  private async claimAndPublish(includeRunNow: boolean): Promise<{ jobs: number; full: boolean }> {
    let jobs = 0;
    let batches = 0;
    let full = false;
    const claimOne = async (withRunNow: boolean): Promise<boolean> => {
      batches += 1;
      const claim = await claimDueJobs(this.opts.db, {
        batchSize: this.opts.settings.batchSize,
        includeRunNow: withRunNow,
        claimant: this.opts.claimant,
        leadMs: this.opts.settings.leadMs,
      });
      jobs += claim.jobs;
      this.counters.claimedJobs += claim.jobs;
      for (const e of claim.scheduleErrors) {
        // Logged once: schedule_error keeps the job out of later claims until its schedule changes.
        this.counters.scheduleErrors += 1;
        this.log.error(
          { job_id: e.jobId, job: e.jobName, err: e.error },
          'job skipped: its schedule cannot be read (fix the schedule to resume it)',
        );
      }
      // Published while the next batch is claimed; waits only when too many batches are unconfirmed.
      await this.dispatcher.submit(claim.runs);
      return claim.full;
    };
    const more = () =>
      !this.dispatcher.failing && !this.stopping && batches < MAX_BATCHES_PER_CYCLE;
    full = await claimOne(includeRunNow);
    if (full && more()) {
      const lane = async () => {
        while (more()) {
          if (!(await claimOne(false))) return false;
        }
        return true;
      };
      const lanes = await Promise.all(Array.from({ length: CLAIM_CONCURRENCY }, lane));
      // Full only if every lane stopped at the cap with rows still coming.
      full = lanes.every(Boolean);
    }
    return { jobs, full };
  }

  private checkClock(p: Probe): void {
    const offset = clockOffsetMs(p);
    if (Math.abs(offset) > SKEW_WARN_MS && !this.skewWarned) {
      this.skewWarned = true;
      this.log.warn(
        { clockOffsetMs: Math.round(offset) },
        "database and process clocks differ by more than 1 s; the database's clock decides what is due",
      );
    } else if (Math.abs(offset) < SKEW_WARN_MS / 2 && this.skewWarned) {
      this.skewWarned = false;
      this.log.info(
        { clockOffsetMs: Math.round(offset) },
        'database and process clocks agree again',
      );
    }
  }
}
