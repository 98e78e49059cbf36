/**
 * Every error CronQ raises on purpose is a CronqError, so callers branch on
 * `instanceof`, never on message text. `exitCode` is what a command should
 * exit with when the error reaches its entrypoint.
 */
export class CronqError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A setting has a value outside its accepted form. Commands exit 2. */
export class ConfigError extends CronqError {
  override readonly exitCode = 2;
}

/** A schedule that cannot be used; branch on the subclasses for why. */
export class ScheduleError extends CronqError {}

/** A schedule text that is neither an ISO 8601 repeating interval nor a cron expression. */
export class ScheduleSyntaxError extends ScheduleError {}

/**
 * A schedule that parses but whose next occurrence the database cannot
 * store (past 9999-12-31T23:59:59.999Z, the end of a DATETIME column).
 */
export class ScheduleRangeError extends ScheduleError {}

/** A job or result message that does not have the fields the wire format needs. */
export class MessageFormatError extends CronqError {}

/** A request body or category file that does not satisfy the category schema. */
export class ValidationError extends CronqError {
  constructor(
    message: string,
    readonly problems: ReadonlyArray<{ path: string; message: string }> = [],
  ) {
    super(message);
  }
}

/** A row that was asked for by id does not exist. */
export class NotFoundError extends CronqError {}

/** No AMQP broker of the configured list could be reached (transient). */
export class BrokerUnavailableError extends CronqError {}

/** The database could not be reached or dropped the connection (transient). */
export class DatabaseUnavailableError extends CronqError {}

/** Command-line usage that cannot be carried out (contradictory or missing flags). Exit 2. */
export class UsageError extends CronqError {
  override readonly exitCode = 2;
}

const TRANSIENT_DB_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_QUERY_INTERRUPTED',
  'ER_CONNECTION_KILLED',
  'ER_CLIENT_INTERACTION_TIMEOUT',
  'ER_NET_READ_ERROR',
  'ER_NET_WRITE_INTERRUPTED',
  'ER_NET_READ_INTERRUPTED',
]);

/**
 * True for database errors that a retry can cure: lost or refused
 * connections, a killed connection, deadlocks and lock wait timeouts.
 * Knex wraps pool acquisition failures as KnexTimeoutError.
 */
export function isTransientDbError(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && TRANSIENT_DB_CODES.has(code)) return true;
  if (err.name === 'KnexTimeoutError') return true;
  const errno = (err as { errno?: unknown }).errno;
  // 1927 = ER_CONNECTION_KILLED (MariaDB), 2006/2013 = server gone away / lost.
  if (errno === 1927 || errno === 2006 || errno === 2013 || errno === 1053) return true;
  if (
    /Connection lost|closed state|Can't add new command when connection is in closed state/i.test(
      err.message,
    )
  )
    return true;
  const cause = (err as { cause?: unknown }).cause;
  return cause !== undefined && cause !== err && isTransientDbError(cause);
}
