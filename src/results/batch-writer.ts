import { sleep } from '../core/async';
import type { Knex } from '../core/db';
import { isTransientDbError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { ResultMessage } from '../core/messages';
import { isLockConflict, isPoisonError, shortError } from './errors';
import type { RetryScheduled } from './retries';
import { writeResults, type WriteLimits } from './store';
import type { NotifyTarget } from '../core/notify/targets';

/**
 * Writes one batch and finds the message that keeps it from being written.
 *
 * A failed write is first judged by asking the database whether it takes
 * writes at all (a statement that inserts nothing into `runs` and `events`:
 * it fails when the server is away, read-only, or denies the tables). If
 * not, it is an outage: the error goes up and the whole batch is handed
 * back and retried with backoff; nothing is dead-lettered. If it does, the
 * batch itself is the problem: it is split in halves, and halves of halves,
 * until the one message that fails alone is found; that one is set aside
 * (the caller dead-letters it) and the rest are stored. Errors a message's
 * data causes (isPoisonError) split at once; any other error (a connection
 * reset, an unknown one) splits after it repeated TRIES_BEFORE_SPLIT times
 * with backoff, so a passing fault does not split a good batch. Lock
 * conflicts never split: a message cannot cause one.
 */

export const TRIES_BEFORE_SPLIT = 3;

export interface Rejected<T> {
  item: T;
  /** Short, without SQL (shortError). */
  reason: string;
}

export interface BatchWriterOptions {
  db: Knex;
  logger: Logger;
  limits: () => WriteLimits;
  signal: AbortSignal;
  random?: () => number;
  /** CRONQ_NOTIFY_* targets for every job (docs/notifications.md). */
  notifyTargets?: readonly NotifyTarget[];
  /** After a commit: runs killed before they started that a runner has started (WriteSummary). */
  onStartedAfterKill?: (runIds: string[]) => void;
}

export class BatchWriter {
  private readonly random: () => number;

  constructor(private readonly opts: BatchWriterOptions) {
    this.random = opts.random ?? Math.random;
  }

  /**
   * Store `items`; returns how many were stored and which ones cannot be.
   * Throws (the batch is to be handed back whole) when the database does
   * not take writes, or the process is stopping while a retry waits.
   */
  async write<T extends { result: ResultMessage }>(
    items: readonly T[],
  ): Promise<{ stored: number; rejected: Array<Rejected<T>>; retries: RetryScheduled[] }> {
    const rejected: Array<Rejected<T>> = [];
    const retries: RetryScheduled[] = [];
    const stored = await this.writeSplitting(items, rejected, retries);
    return { stored, rejected, retries };
  }

  private async writeSplitting<T extends { result: ResultMessage }>(
    items: readonly T[],
    rejected: Array<Rejected<T>>,
    retries: RetryScheduled[],
  ): Promise<number> {
    if (items.length === 0) return 0;
    for (let attempt = 1; ; attempt += 1) {
      let failure: unknown;
      try {
        retries.push(...(await this.writeOnce(items.map((i) => i.result))));
        return items.length;
      } catch (err) {
        failure = err;
      }
      if (isLockConflict(failure) || !(await this.takesWrites())) throw failure;
      if (!isPoisonError(failure) && attempt < TRIES_BEFORE_SPLIT) {
        const fields = { err: shortError(failure), batch: items.length, attempt };
        const text =
          'could not store results while the database takes writes; trying the batch again';
        // Once per batch at warn: a batch that fails while the database works is news.
        if (attempt === 1) this.opts.logger.warn(fields, text);
        else this.opts.logger.debug(fields, text);
        await sleep(250 * 2 ** (attempt - 1) * (0.75 + this.random() * 0.5), this.opts.signal);
        if (this.opts.signal.aborted) throw failure;
        continue;
      }
      if (items.length === 1) {
        rejected.push({ item: items[0]!, reason: `cannot be stored: ${shortError(failure)}` });
        return 0;
      }
      this.opts.logger.warn(
        { err: shortError(failure), batch: items.length },
        'a batch keeps failing while the database takes writes; splitting it to find the message',
      );
      const mid = Math.ceil(items.length / 2);
      return (
        (await this.writeSplitting(items.slice(0, mid), rejected, retries)) +
        (await this.writeSplitting(items.slice(mid), rejected, retries))
      );
    }
  }

  /** Returns the retries the committed transaction wrote. */
  private async writeOnce(results: ResultMessage[]): Promise<RetryScheduled[]> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const summary = await writeResults(
          this.opts.db,
          results,
          this.opts.limits(),
          this.random,
          this.opts.notifyTargets,
        );
        if (summary.runsOfMissingJobs.length > 0) {
          this.opts.logger.info(
            { runs: summary.runsOfMissingJobs },
            'results for jobs that no longer exist: recorded on their runs only',
          );
        }
        this.opts.logger.debug(
          { messages: summary.messages, runs: summary.runs, events: summary.events },
          'results stored',
        );
        if (summary.startedAfterKill.length > 0)
          this.opts.onStartedAfterKill?.(summary.startedAfterKill);
        return summary.retries;
      } catch (err) {
        // Two consumers' batches crossed: retry at once, a few times, before handing the batch back.
        if (!isLockConflict(err) || attempt >= 3) throw err;
        await sleep(10 + this.random() * 50 * (attempt + 1));
      }
    }
  }

  /**
   * Whether the database takes writes to the tables a batch writes: two
   * inserts that insert nothing, so they check the connection, the tables,
   * their columns and the right to write them, and change no row.
   */
  private async takesWrites(): Promise<boolean> {
    try {
      await this.opts.db.raw(
        `INSERT INTO runs (run_id, job_id, job_name, scheduled_for, status, host, queued_at, started_at, finished_at, heartbeat_at, return_code, run_time, output_tail, reason, output_total, stderr_lines)
         SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM DUAL WHERE FALSE`,
      );
      await this.opts.db.raw(
        `INSERT INTO events (job_id, datetime, run_id, type, host, return_code, message_key)
         SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM DUAL WHERE FALSE`,
      );
      return true;
    } catch (err) {
      if (!isTransientDbError(err))
        this.opts.logger.debug({ err: shortError(err) }, 'the database does not take writes');
      return false;
    }
  }
}
