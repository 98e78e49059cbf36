/**
 * Error text fit for a log line, a stored reason or a dead-letter header,
 * for every daemon. A knex query error's message starts with the whole
 * statement and its values (a claim's batch UPDATE is hundreds of rows of
 * job data; a results batch holds commands' output), and carries it again
 * in `.sql`; the driver's own `sqlMessage` says what went wrong without it.
 */

const MAX_CHARS = 300;
const STATEMENT_PREFIX =
  /^\s*(select|insert|update|delete|with|set|begin|commit|rollback|alter|create)\b/i;

export function errorText(err: unknown, max = MAX_CHARS): string {
  let text: string;
  const sqlMessage = (err as { sqlMessage?: unknown } | null)?.sqlMessage;
  if (typeof sqlMessage === 'string' && sqlMessage !== '') text = sqlMessage;
  else {
    const m = (err as { message?: unknown } | null)?.message;
    text = typeof m === 'string' ? m : String(err);
    const carriesSql = typeof (err as { sql?: unknown } | null)?.sql === 'string';
    if (carriesSql || STATEMENT_PREFIX.test(text)) {
      // knex formats "<sql> - <driver message>": keep only the driver's part.
      const cut = text.lastIndexOf(' - ');
      text = cut >= 0 ? text.slice(cut + 3) : 'database error';
    }
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
