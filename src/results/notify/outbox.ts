import { chunkBy } from '../../core/chunks';
import { sqlTime, type Knex } from '../../core/db';
import { isTransientDbError } from '../../core/errors';
import { isLockConflict, shortError } from '../errors';
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
/** Most bytes of one row's items (a row is split before it grows past this). */
export const OUTBOX_ROW_BYTES = 1024 * 1024;
/** Outbox rows one move takes (each up to OUTBOX_ITEMS_PER_ROW notifications). */
export const OUTBOX_ROWS_PER_MOVE = 10;
/** Characters of values one INSERT of a move carries at most: under 2 MiB however encoded and escaped. */
const INSERT_CHARS = 256 * 1024;
/** notifications.target is TEXT: a target stored longer could not be moved. */
const TARGET_MAX_BYTES = 65_535;
const INT_MAX = 2_147_483_647;

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
  // The row's text is `[` + the items joined by `,` + `]`: each item's bytes and one more.
  const texts = items.map((item) => JSON.stringify(item));
  for (const row of chunkBy(
    texts,
    OUTBOX_ITEMS_PER_ROW,
    OUTBOX_ROW_BYTES - 1,
    (t) => Buffer.byteLength(t) + 1,
  ))
    await trx.raw('INSERT INTO notification_outbox (created_at, items) VALUES (?, ?)', [
      at,
      `[${row.join(',')}]`,
    ]);
}

const nullableString = (v: unknown, max: number) =>
  v === null || (typeof v === 'string' && v.length <= max);

function isItem(v: unknown): v is OutboxItem {
  if (!v || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  // Within what the notifications columns hold, so a move never fails on a value.
  return (
    Number.isInteger(o.job_id) &&
    (o.job_id as number) >= 1 &&
    (o.job_id as number) <= INT_MAX &&
    nullableString(o.job_name, 255) &&
    nullableString(o.category, 255) &&
    (o.run_id === null || (typeof o.run_id === 'string' && /^[0-9a-f]{32}$/.test(o.run_id))) &&
    (NOTIFY_EVENTS as readonly unknown[]).includes(o.event) &&
    Number.isInteger(o.failures) &&
    (o.failures as number) >= 0 &&
    (o.failures as number) <= INT_MAX &&
    typeof o.target_key === 'string' &&
    o.target_key.length <= 16 &&
    !!o.target &&
    typeof o.target === 'object' &&
    !Array.isArray(o.target) &&
    storedTargetFits(o.target)
  );
}

/** Whether a target fits notifications.target; a value too deep to write back (a stack overflow) does not. */
function storedTargetFits(target: object): boolean {
  try {
    return Buffer.byteLength(JSON.stringify(target)) <= TARGET_MAX_BYTES;
  } catch {
    return false;
  }
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

export interface OutboxMove {
  /** Rows taken: moved, or set aside. 0: the outbox was empty (or every row is another consumer's). */
  rows: number;
  /** Notifications moved into `notifications`. */
  moved: number;
  /** Malformed items dropped. */
  bad: number;
  /** Rows set aside (outbox.failed set): their id and why. */
  setAside: Array<{ id: number; error: string }>;
}

/**
 * Move up to OUTBOX_ROWS_PER_MOVE outbox rows into `notifications`, due at
 * once and dated when they were decided (the 24 h of retries count from
 * then), in one transaction. A row longer than OUTBOX_ROW_BYTES is set
 * aside (its reason in `failed`, kept for a person). When the database
 * refuses the move for a reason of a row's own (not a lock conflict, not a
 * database that went away), the rows are moved one at a time instead, and
 * the one refused alone is set aside with the error: the rows after it go
 * on. A lock conflict or an outage fails the move, which is tried again.
 */
export async function moveOutbox(db: Knex): Promise<OutboxMove> {
  try {
    return await moveRows(db, OUTBOX_ROWS_PER_MOVE);
  } catch (err) {
    if (isLockConflict(err) || isTransientDbError(err)) throw err;
    return moveOneOrSetAside(db);
  }
}

/** The oldest row alone; refused, it is set aside with the error in a statement of its own. */
async function moveOneOrSetAside(db: Knex): Promise<OutboxMove> {
  const taken: { id?: number } = {};
  try {
    return await moveRows(db, 1, taken);
  } catch (err) {
    if (isLockConflict(err) || isTransientDbError(err) || taken.id === undefined) throw err;
    const error = shortError(err).slice(0, 255);
    await db.raw('UPDATE notification_outbox SET failed = ? WHERE id = ? AND failed IS NULL', [
      error,
      taken.id,
    ]);
    return { rows: 1, moved: 0, bad: 0, setAside: [{ id: taken.id, error }] };
  }
}

async function moveRows(db: Knex, limit: number, taken: { id?: number } = {}): Promise<OutboxMove> {
  return db.transaction(async (trx) => {
    const [rows] = (await trx.raw(
      `SELECT id, created_at, LENGTH(items) AS bytes, IF(LENGTH(items) <= ?, items, NULL) AS items
       FROM notification_outbox WHERE failed IS NULL ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`,
      [OUTBOX_ROW_BYTES, limit],
    )) as [Array<{ id: number; created_at: Date; bytes: number; items: string | null }>];
    const result: OutboxMove = { rows: rows.length, moved: 0, bad: 0, setAside: [] };
    for (const row of rows) {
      taken.id = Number(row.id);
      if (row.items === null) {
        const error = `items of ${row.bytes} bytes, over ${OUTBOX_ROW_BYTES}`;
        result.setAside.push({ id: Number(row.id), error });
        await trx.raw('UPDATE notification_outbox SET failed = ? WHERE id = ?', [error, row.id]);
        continue;
      }
      const parsed = parseOutboxItems(row.items);
      await insertNotifications(trx, parsed.items, row.created_at);
      result.bad += parsed.bad;
      result.moved += parsed.items.length;
      // One key per statement: a DELETE of a list of keys may lock the keys
      // beside them too, which another consumer's move may hold.
      await trx.raw('DELETE FROM notification_outbox WHERE id = ?', [row.id]);
    }
    return result;
  });
}

async function insertNotifications(
  trx: Knex.Transaction,
  items: readonly OutboxItem[],
  createdAt: Date,
): Promise<void> {
  const at = sqlTime(createdAt);
  const rows = items.map((n) => {
    const target = JSON.stringify(n.target);
    return {
      length: target.length + (n.job_name?.length ?? 0) + (n.category?.length ?? 0) + 120,
      values: [
        n.job_id,
        n.job_name,
        n.category,
        n.run_id,
        n.event,
        n.failures,
        n.target_key,
        target,
        at,
        at,
      ],
    };
  });
  // By count and by length: one statement stays far below max_allowed_packet
  // whatever the row's targets hold.
  for (const chunk of chunkBy(rows, OUTBOX_ITEMS_PER_ROW, INSERT_CHARS, (r) => r.length))
    await trx.raw(
      `INSERT INTO notifications (job_id, job_name, category, run_id, event, failures, target_key, target, created_at, next_at)
       VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(',')}`,
      chunk.flatMap((r) => r.values),
    );
}
