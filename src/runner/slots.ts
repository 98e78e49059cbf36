import type { EventEmitter } from 'node:events';
import type { Delivery } from '../core/amqp';
import { within } from '../core/async';
import type { Logger } from '../core/logger';
import type { KillOrder } from '../core/control';
import type { JobToRun } from '../core/messages';
import { setLongTimeout, type LongTimeout } from '../core/timers';
import type { HoldReason, RunnerEvents } from './events';
import type { Prepared } from './execution';
import type { JobProcess } from './job-process';
import { RecentRuns } from './recent-runs';

/** A delivery taken to run, waiting for a slot (and for its occurrence, when it came early). */
export interface Waiting {
  job: JobToRun;
  delivery: Delivery;
  receivedAt: number;
  /** Epoch ms before which it must not start (its occurrence, when published ahead); 0 = now. */
  notBefore: number;
  /** Its gated shell, forked while it waited (see preforkWaiting). */
  prepared?: Prepared;
}

/** A run in a slot: acked, its command released (or about to be). */
export interface ActiveRun {
  job: JobToRun;
  startTime: Date;
  /** performance.now() when the run took its slot. */
  takenHr: number;
  process: JobProcess | undefined;
  heartbeats: number;
  /** Settles when the run has ended and its last result is queued. */
  ended: Promise<void>;
  /** The kill order that is ending it, if any (kills.ts). */
  kill?: KillOrder;
}

export interface SlotsOptions {
  concurrency: number;
  /** How long a due delivery may wait for a free slot before it goes back to the queue. */
  holdMs: number;
  logger: Logger;
  events: EventEmitter<RunnerEvents>;
  /** True while no run may start, whatever the slots (the result buffer is over its limit). */
  blocked(): boolean;
  /** Start a due delivery in a free slot (execution.ts). */
  start(w: Waiting): void;
  /** Record a delivery whose starting deadline passed `lateMs` ago as missed, without a slot (execution.ts). */
  miss(w: Waiting, lateMs: number): void;
  /** Fork a waiting delivery's gated shell ahead (execution.ts); may throw. */
  prepare(job: JobToRun): Prepared;
  /** Let a prepared shell exit without running anything. */
  abandon(p: Prepared | undefined): void;
  /** Stop consuming for this reason (the consumer); resolves once the broker has cancelled the consumer. */
  hold(reason: HoldReason): Promise<void>;
  /** Undo `hold(reason)`. */
  release(reason: HoldReason): void;
}

/**
 * The runner's own concurrency limit and the deliveries that wait for it.
 * Acked (started) runs no longer count against the broker's prefetch, so
 * the runner bounds them here: a due delivery starts when a slot is free,
 * in arrival order; one that came before its occurrence waits for it
 * without taking a slot; one that waits `holdMs` with every slot busy goes
 * back to the queue (for another runner), and the runner holds its
 * consumer ('slots') until a slot frees. Each waiting delivery's shell is
 * forked ahead, gated, so a freed slot starts the next command at once.
 */
export class Slots {
  readonly active = new Map<string, ActiveRun>();
  private waiting: Waiting[] = [];
  private readonly recent = new RecentRuns();
  private holdTimer: LongTimeout | undefined;
  /** Wakes schedule() when the earliest delivery published ahead of its occurrence comes due. */
  private dueTimer: LongTimeout | undefined;
  private dueAt = Infinity;
  private preforkQueued = false;
  private stopping = false;

  constructor(private readonly opts: SlotsOptions) {}

  get waitingCount(): number {
    return this.waiting.length;
  }

  /** This runner has the run: in a slot, waiting for one, or taken lately. */
  has(runId: string): boolean {
    return (
      this.active.has(runId) ||
      this.recent.has(runId) ||
      this.waiting.some((w) => w.job.runId === runId)
    );
  }

  /** Take a waiting delivery out (a kill order for it came); undefined if none waits here. */
  take(runId: string): Waiting | undefined {
    const i = this.waiting.findIndex((w) => w.job.runId === runId);
    if (i < 0) return undefined;
    const [w] = this.waiting.splice(i, 1);
    this.schedule();
    return w;
  }

  /** A new delivery to run: it waits here until it is due and a slot is free (see schedule). */
  add(w: Waiting): void {
    this.waiting.push(w);
    this.opts.events.emit('delivery:taken', {
      runId: w.job.runId,
      jobId: w.job.jobId,
      notBefore: w.notBefore,
    });
  }

  /** A run takes its slot (execution.ts). */
  occupy(run: ActiveRun): void {
    this.active.set(run.job.runId, run);
    this.recent.add(run.job.runId);
  }

  /** Take the run out of its slot (once) and start what waits for it. */
  free(run: ActiveRun): void {
    if (this.active.get(run.job.runId) !== run) return;
    this.active.delete(run.job.runId);
    this.schedule();
  }

  private isFull(): boolean {
    return this.active.size >= this.opts.concurrency || this.opts.blocked();
  }

  /**
   * Start the waiting deliveries that are due, in arrival order, while slots
   * are free (recording those past their starting deadline missed); wake again when the next early one comes due; bound how long
   * a due one may wait for a slot.
   */
  schedule(): void {
    const now = Date.now();
    let nextDue = Infinity;
    let blocked = false;
    for (let i = 0; i < this.waiting.length && !this.stopping;) {
      const w = this.waiting[i]!;
      const startBy = w.job.startBy ?? null;
      if (startBy !== null && now > startBy) {
        // Its starting deadline has passed: it can never start in time, so it
        // is recorded missed now, whether or not a slot is free (a delivery
        // that waited for a slot, in the queue or here, is covered).
        this.waiting.splice(i, 1);
        this.opts.miss(w, now - startBy);
      } else if (w.notBefore > now) {
        nextDue = Math.min(nextDue, w.notBefore);
        i += 1;
      } else if (this.isFull()) {
        blocked = true;
        i += 1;
      } else {
        this.waiting.splice(i, 1);
        this.opts.start(w);
      }
    }
    this.armDueTimer(this.stopping ? Infinity : nextDue);
    if (!blocked) {
      this.holdTimer?.cancel();
      this.holdTimer = undefined;
      if (this.active.size < this.opts.concurrency) this.opts.release('slots');
    } else if (!this.holdTimer && !this.stopping) {
      this.holdTimer = setLongTimeout(() => this.holdExpired(), this.opts.holdMs);
    }
    if (this.waiting.length > 0) this.preforkWaiting();
  }

  private armDueTimer(at: number): void {
    if (at === this.dueAt) return;
    this.dueTimer?.cancel();
    this.dueTimer = undefined;
    this.dueAt = at;
    if (at === Infinity) return;
    // `at` comes from a message's scheduled_for (bounded by MAX_LEAD_MS in
    // the intake); the safe timer still takes any value (NaN = now).
    this.dueTimer = setLongTimeout(() => {
      this.dueTimer = undefined;
      this.dueAt = Infinity;
      this.schedule();
    }, at - Date.now());
  }

  /**
   * Fork the gated shell of each delivery waiting for a slot, after the runs
   * just started have asked for theirs. The launcher thread forks it (about
   * a millisecond a child) while the slots' commands run, so no fork lies
   * between one run's end and the next run's start. A prepared shell runs
   * nothing until `go`, so a delivery given back to the queue costs only its
   * fork. At most one per prefetched delivery.
   */
  private preforkWaiting(): void {
    if (this.preforkQueued) return;
    this.preforkQueued = true;
    setImmediate(() => {
      this.preforkQueued = false;
      for (const w of this.waiting) {
        if (this.stopping) return;
        try {
          w.prepared ??= this.opts.prepare(w.job);
        } catch {
          // Its start prepares it again and reports the failure as the run's result.
        }
      }
    });
  }

  /**
   * Every slot stayed busy for `holdMs`: stop consuming until a slot frees,
   * and give the waiting deliveries back to the queue. Given back once the
   * consumer is cancelled, so the broker offers them to other runners, not
   * to this one again.
   */
  private holdExpired(): void {
    this.holdTimer = undefined;
    void this.opts.hold('slots').then(() => {
      if (this.stopping) return;
      const returned = this.returnWaiting('hold');
      if (returned > 0)
        this.opts.logger.debug(
          { released: returned },
          'all slots busy: returned waiting jobs to the queue',
        );
    });
  }

  /** Give every waiting delivery back to the queue (its shell, if forked, runs nothing). */
  returnWaiting(why: 'hold' | 'stopping'): number {
    return this.drop(() => true, why).length;
  }

  /** The consumer's channel closed: the broker has requeued its deliveries, so forget those waiting here. */
  dropLost(): void {
    this.drop((w) => !w.delivery.live, 'lost');
  }

  private drop(which: (w: Waiting) => boolean, why: 'hold' | 'stopping' | 'lost'): Waiting[] {
    const dropped = this.waiting.filter(which);
    if (dropped.length === 0) return dropped;
    this.waiting = this.waiting.filter((w) => !which(w));
    for (const w of dropped) {
      this.opts.abandon(w.prepared);
      // A lost one is back on the queue already; the others go back now (nack with requeue).
      if (why !== 'lost') w.delivery.nack(true);
      this.opts.events.emit('delivery:returned', { runId: w.job.runId, jobId: w.job.jobId, why });
    }
    return dropped;
  }

  /** Start nothing more (the waiting deliveries stay until `returnWaiting('stopping')`). */
  stop(): void {
    this.stopping = true;
    this.holdTimer?.cancel();
    this.holdTimer = undefined;
    this.armDueTimer(Infinity);
  }

  /** Resolves true when no run is in a slot, false after `ms`. Only spawned runs count when `spawnedOnly`. */
  async waitForRuns(ms: number, spawnedOnly = false): Promise<boolean> {
    const runs = [...this.active.values()].filter((r) => !spawnedOnly || r.process);
    if (runs.length === 0) return true;
    return (await within(Promise.all(runs.map((r) => r.ended)), ms)).done;
  }
}
