import { errorText } from '../core/error-text';
import { BrokerUnavailableError } from '../core/errors';
import { isTransientDbError } from '../core/errors';

/**
 * How the batch writer treats a failed write. A *poison* error is caused by
 * the data of one message (SQL state class 22 "data exception" or 23
 * "integrity constraint violation", or a statement the server refuses as
 * too large): retrying cannot cure it, so the batch is split at once and
 * the one message that fails alone is dead-lettered. Other errors are
 * split on only once the database is shown to take writes
 * (src/results/batch-writer.ts).
 */
export function isPoisonError(err: unknown): boolean {
  if (err instanceof BrokerUnavailableError) return false;
  const e = err as { sqlState?: unknown; code?: unknown } | null;
  if (e?.code === 'ER_NET_PACKET_TOO_LARGE') return true;
  if (isTransientDbError(err)) return false;
  const state = e?.sqlState;
  return typeof state === 'string' && (state.startsWith('22') || state.startsWith('23'));
}

/** Deadlocks and lock wait timeouts: worth an immediate retry before the batch is handed back. */
export function isLockConflict(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
}

/** Longest error text that goes into a log line or a dead-letter header. */
export const MAX_ERROR_CHARS = 200;

/**
 * An error as one short line: the server's own message (mysql2's
 * `sqlMessage`) rather than knex's, which starts with the whole statement
 * and so carries every value of the batch (a 10 MB output, a command). Cut
 * to MAX_ERROR_CHARS, with the error code in front when there is one.
 */
export function shortError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const prefix = typeof code === 'string' ? `${code}: ` : '';
  const line = (prefix + errorText(err, Infinity)).replace(/\s+/g, ' ');
  return line.length > MAX_ERROR_CHARS ? `${line.slice(0, MAX_ERROR_CHARS - 1)}…` : line;
}
