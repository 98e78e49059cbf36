import { exponentialBackoff, sleep } from '../core/async';
import { migrate, type Knex } from '../core/db';
import { isTransientDbError } from '../core/errors';
import type { Logger } from '../core/logger';
import { errorText } from '../core/error-text';

/**
 * Bring the schema up to date before the first claim. The database may
 * still be starting (containers, a failover): transient errors are waited
 * out with backoff, anything else is fatal.
 */
export async function migrateWithRetry(
  db: Knex,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  const backoff = exponentialBackoff(250, 15_000);
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const applied = await migrate(db);
      if (applied.length > 0) logger.info({ applied }, 'database migrated');
      return;
    } catch (err) {
      if (!isTransientDbError(err)) throw err;
      const delay = backoff.delay(attempt);
      const fields = {
        err: errorText(err),
        nextRetryAt: new Date(Date.now() + delay).toISOString(),
      };
      if (attempt === 0) logger.warn(fields, 'database unavailable; retrying with backoff');
      else logger.debug(fields, 'database still unavailable');
      await sleep(delay, signal);
    }
  }
}
