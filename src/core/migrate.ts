import { exponentialBackoff, sleep } from './async';
import { migrate, type Knex } from './db';
import { errorText } from './error-text';
import { isTransientDbError } from './errors';
import type { Logger } from './logger';

export interface MigrateOptions {
  logger: Logger;
  /** Ends the wait for the database (the process is stopping). */
  signal: AbortSignal;
  /**
   * false: one attempt, and a database that cannot be reached is an error
   * like any other (cronq-web, which serves without one). Default true.
   */
  waitForDatabase?: boolean;
}

/**
 * Bring the schema up to date before a daemon's first query. Migrations are
 * additive and safe to run from several processes at once, so the order in
 * which an operator starts the processes does not matter, and a database
 * that is not up yet (containers starting, a failover) is waited for with
 * backoff and one warning, not a reason to exit; any other error is thrown.
 * Returns false when `signal` ended the wait, true once migrated.
 */
export async function migrateWhenReachable(db: Knex, opts: MigrateOptions): Promise<boolean> {
  const { logger, signal } = opts;
  const backoff = exponentialBackoff(250, 15_000);
  for (let attempt = 0; !signal.aborted; attempt += 1) {
    try {
      const applied = await migrate(db);
      if (applied.length > 0) logger.info({ applied }, 'database migrated');
      return true;
    } catch (err) {
      // A stop during start closes the pool under migrate(): that is a stop, not a failure.
      if (signal.aborted) return false;
      if (opts.waitForDatabase === false || !isTransientDbError(err)) throw err;
      const delay = backoff.delay(attempt);
      const fields = {
        err: errorText(err),
        nextRetryAt: new Date(Date.now() + delay).toISOString(),
      };
      if (attempt === 0) logger.warn(fields, 'database unavailable; waiting for it');
      else logger.debug(fields, 'database still unavailable');
      await sleep(delay, signal);
    }
  }
  return false;
}
