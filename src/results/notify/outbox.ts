import { sqlTime, type Knex } from '../../core/db';
import { NOTIFY_EVENTS } from '../../core/notify/targets';
import type { NotificationRow } from './body';

/**
 * The notification outbox (docs/notifications.md): record.ts writes what one
 * transaction decided to notify as one `notification_outbox` row (a JSON
 * array, at most OUTBOX_ITEMS_PER_ROW), so storing a batch of failures
 * costs the results one insert. The sender moves rows into `notifications`
 * (moveOutbox), one row per notification, in a transaction that takes
 * them FOR UPDATE SKIP LOCKED and deletes them: each is moved once, by one
 * consumer, and what was moved is exactly what was written.
 */

export const OUTBOX_ITEMS_PER_ROW = 500;
/** Outbox rows one move takes (each up to OUTBOX_ITEMS_PER_ROW notifications). */
export const OUTBOX_ROWS_PER_MOVE = 10;

/** One notification as the outbox carries it: its row to be, but for what the move adds. */
export type OutboxItem = Omit<NotificationRow, 'id' | 'attempts' | 'created_at' | 'target'> & {
  target_key: string;
  /** What notifications.target stores (sender.ts reads it back when sending). */
  target: Record<string, unknown>;
};

export async function writeOutbox(
  trx: Knex.Transaction,
  items: readonly OutboxItem[],
  at: string,
): Promise<void> {
  for (let i = 0; i < items.length; i += OUTBOX_ITEMS_PER_ROW)
    await trx.raw('INSERT INTO notification_outbox (created_at, items) VALUES (?, ?)', [
      at,
      JSON.stringify(items.slice(i, i + OUTBOX_ITEMS_PER_ROW)),
    ]);
}

const nullableString = (v: unknown, max: number) =>
  v === null || (typeof v === 'string' && v.length <= max);

function isItem(v: unknown): v is OutboxItem {
  if (!v || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  return (
    Number.isSafeInteger(o.job_id) &&
    nullableString(o.job_name, 255) &&
    nullableString(o.category, 255) &&
    (o.run_id === null || (typeof o.run_id === 'string' && /^[0-9a-f]{32}$/.test(o.run_id))) &&
    (NOTIFY_EVENTS as readonly unknown[]).includes(o.event) &&
    Number.isSafeInteger(o.failures) &&
    typeof o.target_key === 'string' &&
    o.target_key.length <= 16 &&
    !!o.target &&
    typeof o.target === 'object' &&
    !Array.isArray(o.target)
  );
}

/**
 * The notifications of one outbox row. Written by record.ts only, but read
 * as any stored text is: what is not a well-formed notification is counted
 * in `bad` and dropped (it could never be sent), never a reason to stop
 * moving the others.
 */
export function parseOutboxItems(text: string): { items: OutboxItem[]; bad: number } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { items: [], bad: 1 };
  }
  if (!Array.isArray(doc)) return { items: [], bad: 1 };
  const items = doc.filter(isItem);
  return { items, bad: doc.length - items.length };
}

/**
 * Move up to OUTBOX_ROWS_PER_MOVE outbox rows into `notifications`, due at
 * once and dated when they were decided (the 24 h of retries count from
 * then). Returns how many notifications were moved and how many items were
 * dropped as malformed; `rows` is 0 when the outbox was empty (or every row
 * is being moved by another consumer).
 */
export async function moveOutbox(db: Knex): Promise<{ rows: number; moved: number; bad: number }> {
  return db.transaction(async (trx) => {
    const [rows] = (await trx.raw(
      `SELECT id, created_at, items FROM notification_outbox ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`,
      [OUTBOX_ROWS_PER_MOVE],
    )) as [Array<{ id: number; created_at: Date; items: string }>];
    if (rows.length === 0) return { rows: 0, moved: 0, bad: 0 };
    let moved = 0;
    let bad = 0;
    for (const row of rows) {
      const parsed = parseOutboxItems(row.items);
      bad += parsed.bad;
      const at = sqlTime(row.created_at);
      for (let i = 0; i < parsed.items.length; i += OUTBOX_ITEMS_PER_ROW) {
        const chunk = parsed.items.slice(i, i + OUTBOX_ITEMS_PER_ROW);
        await trx.raw(
          `INSERT INTO notifications (job_id, job_name, category, run_id, event, failures, target_key, target, created_at, next_at)
           VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(',')}`,
          chunk.flatMap((n) => [
            n.job_id,
            n.job_name,
            n.category,
            n.run_id,
            n.event,
            n.failures,
            n.target_key,
            JSON.stringify(n.target),
            at,
            at,
          ]),
        );
        moved += chunk.length;
      }
    }
    await trx.raw(
      `DELETE FROM notification_outbox WHERE id IN (${rows.map(() => '?').join(',')})`,
      rows.map((r) => r.id),
    );
    return { rows: rows.length, moved, bad };
  });
}
