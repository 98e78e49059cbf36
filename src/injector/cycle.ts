import { claimAndPublish } from './claim-lanes';
import { ClockSkewWatch } from './clock-skew';
import type { CycleContext } from './cycle-context';
import { retakeUnpublished, takeDueRetries } from './outbox';
import { probe, type Probe } from './probe';

export interface CycleResult {
  /** Runs were created or retaken. */
  worked: boolean;
  /** A query returned a full batch: more is due right now. */
  full: boolean;
  /** Something was due but every row was locked by another injector. */
  contended: boolean;
  /** Jobs claimed in this cycle. */
  claimed: number;
}

/**
 * One pass of the injector's work, after which the loop decides how long to
 * sleep: retry this process's own unconfirmed publishes, probe the database
 * (one query), retake stale unpublished runs, publish retry runs whose
 * time has come, and claim due jobs in batches
 * that are published as they come. It throws what failed (an outage, a
 * publish of an earlier cycle that was not confirmed): the loop backs off.
 */
export class Cycle {
  /** The last probe: when the earliest job is due, and the clocks' offset. */
  lastProbe: Probe | undefined;
  /** The last claim found due jobs: claim again before probing. */
  private claimStreak = false;
  /**
   * The earliest occurrence the last claim left for later (an overlap-forbid
   * job whose previous run was still going ahead of it); null if none.
   * The loop sleeps until then instead of claiming again at once.
   */
  waitingUntil: Date | null = null;
  private readonly clock: ClockSkewWatch;

  constructor(private readonly ctx: CycleContext) {
    this.clock = new ClockSkewWatch(ctx.logger, ctx.events);
  }

  async run(): Promise<CycleResult> {
    const { db, settings, claimant, dispatcher, logger } = this.ctx;
    const result: CycleResult = { worked: false, full: false, contended: false, claimed: 0 };

    // A publish of an earlier cycle failed: surface it here so the loop backs off.
    const failed = dispatcher.takeError();
    if (failed !== undefined) throw failed;
    await dispatcher.flushMarks();
    const own = dispatcher.unpublished;
    if (own.size > 0) {
      await dispatcher.idle();
      const ids = [...own].slice(0, settings.batchSize);
      const retaken = await retakeUnpublished(
        db,
        { runIds: ids },
        { batchSize: settings.batchSize, claimant },
      );
      // Those not retaken were published by someone else meanwhile, or are being retaken by them.
      for (const id of ids) own.delete(id);
      if (retaken.runs.length > 0) {
        logger.info(
          { runs: retaken.runs.length },
          'publishing runs again after a failed publish (same run ids)',
        );
        await dispatcher.publishNow(retaken.runs, true);
        result.worked = true;
      }
      if (own.size > 0) result.full = true;
    }

    // While claims keep finding due jobs (a stream of them), claim again at
    // once instead of probing first; probe when a claim came back empty, and
    // at least every maxPollMs so run-now flags and stale runs are seen.
    const last = this.lastProbe;
    const skipProbe =
      this.claimStreak && last !== undefined && this.ctx.now() - last.localAt < settings.maxPollMs;
    if (skipProbe) {
      const claimed = await claimAndPublish(this.ctx, false);
      this.waitingUntil = claimed.waitingUntil;
      this.claimStreak = claimed.jobs > 0;
      result.worked = claimed.jobs > 0;
      result.full = claimed.full;
      result.claimed = claimed.jobs;
      return result;
    }

    const p = await probe(db, settings.republishAfterMs, this.ctx.now);
    this.lastProbe = p;
    this.clock.check(p);

    if (p.stale && !this.ctx.stopping()) {
      const retaken = await retakeUnpublished(
        db,
        { olderThanMs: settings.republishAfterMs },
        { batchSize: settings.batchSize, claimant },
      );
      if (retaken.runs.length > 0) {
        logger.warn(
          { runs: retaken.runs.length },
          'publishing runs whose publish was never confirmed (same run ids)',
        );
        await dispatcher.publishNow(retaken.runs, true);
      }
      if (retaken.runs.length > 0 || retaken.orphaned > 0) result.worked = true;
      else result.contended = true;
      result.full ||= retaken.full;
    }

    if (
      p.nextRetry !== null &&
      p.nextRetry.getTime() <= p.dbNow.getTime() &&
      !this.ctx.stopping()
    ) {
      const taken = await takeDueRetries(db, { batchSize: settings.batchSize, claimant });
      if (taken.runs.length > 0) {
        this.ctx.events.emit('retry:due', { runIds: taken.runs.map((r) => r.runId) });
        logger.info({ runs: taken.runs.length }, 'publishing retry runs whose time has come');
        await dispatcher.publishNow(taken.runs);
      }
      if (taken.runs.length > 0 || taken.orphaned > 0) result.worked = true;
      else result.contended = true;
      result.full ||= taken.full;
    }

    const due = p.nextDue !== null && p.nextDue.getTime() < p.dbNow.getTime() + settings.leadMs;
    this.claimStreak = false;
    this.waitingUntil = null;
    if ((due || p.runNow) && !this.ctx.stopping()) {
      const claimed = await claimAndPublish(this.ctx, p.runNow);
      this.waitingUntil = claimed.waitingUntil;
      result.claimed = claimed.jobs;
      if (claimed.jobs > 0) {
        this.claimStreak = true;
        result.worked = true;
        result.full ||= claimed.full;
      } else if (claimed.waitingUntil === null) {
        result.contended = true;
      }
    }
    return result;
  }
}
