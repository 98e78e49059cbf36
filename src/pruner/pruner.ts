import { DateTime } from 'luxon';
import { dbNow, type Knex } from '../core/db';
import type { Logger } from '../core/logger';
import { FINAL_RUN_STATUSES } from '../core/runs';
import { NotificationPruner } from './notifications';
import type { PruneOptions } from './options';

export interface PruneResult {
  events: number;
  runs: number;
  /** Done (sent or failed) notifications deleted; never a pending one. */
  notifications: number;
  /** Their delivery attempts (notification_attempts rows). */
  notificationAttempts: number;
  /** True when a signal stopped the pruner between two statements. */
  interrupted: boolean;
}

export interface PruneDeps {
  db: Knex;
  logger: Logger;
  /** Aborting stops the pruner after the statement in progress. */
  signal?: AbortSignal;
}

type Affected = [{ affectedRows: number }, unknown];

/**
 * Deletes old events, the runs that go with them, and old notifications
 * (notifications.ts) in bounded chunks:
 * every statement touches at most `chunk` rows (or ids) and commits on its
 * own, so a table of tens of millions of rows is never locked for long and
 * the pruner can be stopped at any point without undoing anything.
 *
 * A run is removed only once it is final (never `queued` or `running`) and
 * no event of it is left, so the runs table never shows a run whose events
 * are gone while the events table never loses a run it still refers to.
 *
 * Notifications follow the age (`--older-than`) and per-job count (`--keep`)
 * modes; an id range names event ids, so `--first/--last` leaves them alone.
 */
export async function prune(opts: PruneOptions, deps: PruneDeps): Promise<PruneResult> {
  const p = new Prune(opts, deps);
  return p.run();
}

class Prune {
  private readonly result: PruneResult = {
    events: 0,
    runs: 0,
    notifications: 0,
    notificationAttempts: 0,
    interrupted: false,
  };
  private readonly notifications: NotificationPruner;

  constructor(
    private readonly opts: PruneOptions,
    private readonly deps: PruneDeps,
  ) {
    this.notifications = new NotificationPruner({
      db: deps.db,
      logger: deps.logger,
      chunk: opts.chunk,
      stopped: () => this.stopped,
      counts: this.result,
    });
  }

  private get stopped(): boolean {
    if (this.deps.signal?.aborted) this.result.interrupted = true;
    return this.result.interrupted;
  }

  async run(): Promise<PruneResult> {
    const m = this.opts.mode;
    if (m.kind === 'range') await this.range(m.first, m.last);
    else if (m.kind === 'keep') {
      await this.keep(m.keep);
      await this.notifications.keep(m.keep);
    } else {
      const now = await dbNow(this.deps.db);
      const cutoff = DateTime.fromJSDate(now, { zone: 'utc' }).minus(m.age).toJSDate();
      this.deps.logger.debug(
        { cutoff: cutoff.toISOString() },
        'pruning events, runs and notifications older than the cutoff',
      );
      await this.olderThan(cutoff);
      await this.notifications.olderThan(cutoff);
    }
    return this.result;
  }

  /** Events with ids first..last (inclusive), `chunk` ids per statement; empty stretches are skipped. */
  private async range(first: number, last: number): Promise<void> {
    const { db } = this.deps;
    let lo = first;
    while (lo <= last && !this.stopped) {
      const [{ next }] = (await db('events')
        .min({ next: 'id' })
        .whereBetween('id', [lo, last])) as [{ next: number | null }];
      if (next === null) break;
      const hi = Math.min(last, next + this.opts.chunk - 1);
      const runIds = await this.runIdsOf(db('events').whereBetween('id', [next, hi]));
      const [res] = (await db.raw('DELETE FROM events WHERE id BETWEEN ? AND ?', [
        next,
        hi,
      ])) as Affected;
      this.result.events += res.affectedRows;
      await this.deleteRunsWithoutEvents(runIds);
      this.deps.logger.debug(
        { from: next, to: hi, deleted: res.affectedRows },
        'deleted events by id range',
      );
      lo = hi + 1;
    }
  }

  /** For every job, all but its newest `keep` events (by id), and its final runs older than what is kept. */
  private async keep(keep: number): Promise<void> {
    const { db } = this.deps;
    const jobs = (await db('events')
      .distinct('job_id')
      .whereNotNull('job_id')
      .orderBy('job_id')) as Array<{ job_id: number }>;
    for (const { job_id: jobId } of jobs) {
      if (this.stopped) return;
      let boundary: { id: number; datetime: Date | null } | undefined;
      if (keep > 0) {
        boundary = (await db('events')
          .select('id', 'datetime')
          .where('job_id', jobId)
          .orderBy('id', 'desc')
          .offset(keep - 1)
          .first()) as typeof boundary;
        if (!boundary) continue; // the job has no more than `keep` events
      }
      const before = this.result.events;
      for (;;) {
        if (this.stopped) return;
        const [res] = (await db.raw(
          boundary
            ? 'DELETE FROM events WHERE job_id = ? AND id < ? ORDER BY id LIMIT ?'
            : 'DELETE FROM events WHERE job_id = ? ORDER BY id LIMIT ?',
          boundary ? [jobId, boundary.id, this.opts.chunk] : [jobId, this.opts.chunk],
        )) as Affected;
        this.result.events += res.affectedRows;
        if (res.affectedRows < this.opts.chunk) break;
      }
      // Runs of this job that are older than its oldest kept event (all of them when none is kept).
      await this.deleteRunsWhere((q) => {
        q.where('job_id', jobId);
        if (boundary?.datetime) q.where('queued_at', '<', boundary.datetime);
        else if (boundary) q.whereRaw('1 = 0'); // a kept event without a time: keep the runs
      });
      this.deps.logger.debug(
        { job_id: jobId, deleted: this.result.events - before },
        'kept the newest events of a job',
      );
    }
    // --keep 0 keeps no history at all: also the final runs that never had an
    // event (or whose job is gone), which the loop over jobs with events misses.
    if (keep === 0) await this.deleteRunsWhere(() => undefined);
  }

  /** Events and final runs from before `cutoff` (database clock). */
  private async olderThan(cutoff: Date): Promise<void> {
    const { db } = this.deps;
    let lastId = 0;
    while (!this.stopped) {
      // A plain SELECT takes no locks; the DELETE then locks only these rows by primary key.
      const rows = (await db('events')
        .select('id')
        .where('id', '>', lastId)
        .andWhere('datetime', '<', cutoff)
        .orderBy('id')
        .limit(this.opts.chunk)) as Array<{ id: number }>;
      if (rows.length === 0) break;
      const ids = rows.map((r) => r.id);
      const runIds = await this.runIdsOf(db('events').whereIn('id', ids));
      this.result.events += await db('events').whereIn('id', ids).del();
      await this.deleteRunsWithoutEvents(runIds);
      lastId = ids[ids.length - 1]!;
    }
    await this.deleteRunsWhere((q) => {
      q.where((w) => {
        w.where('finished_at', '<', cutoff).orWhere((o) =>
          o.whereNull('finished_at').andWhere('queued_at', '<', cutoff),
        );
      });
    });
  }

  private async runIdsOf(q: Knex.QueryBuilder): Promise<string[]> {
    const rows = (await q.distinct('run_id').whereNotNull('run_id')) as Array<{ run_id: string }>;
    return rows.map((r) => r.run_id);
  }

  /** The given runs, once final and left without events. */
  private async deleteRunsWithoutEvents(runIds: string[]): Promise<void> {
    for (let i = 0; i < runIds.length && !this.stopped; i += this.opts.chunk) {
      const slice = runIds.slice(i, i + this.opts.chunk);
      await this.deleteRunsWhere((q) => q.whereIn('run_id', slice));
    }
  }

  /** Final runs matching `filter` that have no event left, `chunk` per statement. */
  private async deleteRunsWhere(filter: (q: Knex.QueryBuilder) => void): Promise<void> {
    const { db } = this.deps;
    for (;;) {
      if (this.stopped) return;
      const q = db('runs')
        .whereIn('status', FINAL_RUN_STATUSES as string[])
        .whereNotExists((s) =>
          s.select(db.raw('1')).from('events').whereRaw('events.run_id = runs.run_id'),
        )
        .limit(this.opts.chunk);
      filter(q);
      const n = await q.del();
      this.result.runs += n;
      if (n < this.opts.chunk) return;
    }
  }
}
