/**
 * Error text fit for a log line or a stored reason. A knex query error's
 * message starts with the whole statement and its values (a claim's batch
 * UPDATE is hundreds of rows of job data), and carries it again in `.sql`;
 * the driver's own `sqlMessage` says what went wrong without it.
 */

const MAX_CHARS = 300;
const STATEMENT_PREFIX =
  /^\s*(select|insert|update|delete|with|set|begin|commit|rollback|alter|create)\b/i;

export function errorText(err: unknown, max = MAX_CHARS): string {
  let text: string;
  const sqlMessage = (err as { sqlMessage?: unknown } | null)?.sqlMessage;
  if (typeof sqlMessage === 'string' && sqlMessage !== '') text = sqlMessage;
  else {
    text = err instanceof Error ? err.message : String(err);
    const cut = text.lastIndexOf(' - ');
    if (cut >= 0 && STATEMENT_PREFIX.test(text)) text = text.slice(cut + 3);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The fields to log for an error: its bounded text and code, and a stack only when it carries no SQL. */
export function errorFields(err: unknown): { err: string; code?: unknown; stack?: string } {
  const code = (err as { code?: unknown } | null)?.code;
  const fields: { err: string; code?: unknown; stack?: string } = { err: errorText(err) };
  if (code !== undefined) fields.code = code;
  const carriesSql =
    typeof (err as { sql?: unknown } | null)?.sql === 'string' ||
    (err instanceof Error && STATEMENT_PREFIX.test(err.message));
  if (err instanceof Error && err.stack && !carriesSql) {
    fields.stack = err.stack.slice(0, 4000);
  }
  return fields;
}
