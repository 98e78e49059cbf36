import { BrokerUnavailableError } from '../core/errors';
import { isTransientDbError } from '../core/errors';

/**
 * How the batch writer treats a failed write. A *poison* error is caused by
 * the data of one message (SQL state class 22 "data exception" or 23
 * "integrity constraint violation"): retrying cannot cure it, so the batch
 * is split and the one message that fails alone is dead-lettered. Every
 * other error (connection lost, deadlock, database away, even an unknown
 * one) is retried with backoff: no result is dropped because the database
 * had a bad minute.
 */
export function isPoisonError(err: unknown): boolean {
  if (isTransientDbError(err) || err instanceof BrokerUnavailableError) return false;
  const state = (err as { sqlState?: unknown } | null)?.sqlState;
  return typeof state === 'string' && (state.startsWith('22') || state.startsWith('23'));
}

/** Deadlocks and lock wait timeouts: worth an immediate retry before the batch is handed back. */
export function isLockConflict(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
}
