import { exponentialBackoff, sleep } from '../core/async';
import { migrate, type Knex } from '../core/db';
import { isTransientDbError } from '../core/errors';
import type { Logger } from '../core/logger';

/**
 * Bring the schema up to date, waiting for a database that is not up yet.
 * Migrations are idempotent and safe to run concurrently, so the order in
 * which an operator starts the processes does not matter; an unreachable
 * database is waited for (backoff with jitter, one warning), not a reason
 * to exit. Returns false when `signal` ended the wait (the process is
 * stopping), true once migrated.
 */
export async function migrateWhenReachable(
  db: Knex,
  logger: Logger,
  signal: AbortSignal,
): Promise<boolean> {
  const backoff = exponentialBackoff(500, 15_000);
  for (let attempt = 0; !signal.aborted; attempt += 1) {
    try {
      await migrate(db);
      return true;
    } catch (err) {
      // A signal during start closes the pool under migrate(): that is a stop, not a failure.
      if (signal.aborted) return false;
      if (!isTransientDbError(err)) throw err;
      const delay = backoff.delay(attempt);
      if (attempt === 0) {
        logger.warn(
          { err: (err as Error).message, nextRetryAt: new Date(Date.now() + delay).toISOString() },
          'database unavailable; waiting for it',
        );
      }
      await sleep(delay, signal);
    }
  }
  return false;
}
