import type { Request } from 'express';
import type { Knex } from '../core/db';

/**
 * The runtime pause (docs/policies.md): `paused_at` and `paused_by` are set
 * and cleared only here, never by a category PUT. Pausing a paused job keeps
 * when and by whom it was first paused, and resuming a running job changes
 * nothing, so both are idempotent.
 */

export interface PauseState {
  id: number;
  paused_at: Date | null;
  paused_by: string | null;
}

/**
 * Who paused: the API token names no one, so the way in ("api" or "admin",
 * the pages) and the client's address, e.g. "api from 10.0.0.7".
 */
export function pausedBy(req: Request, via: 'api' | 'admin'): string {
  const addr = (req.socket?.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
  return `${via} from ${addr}`.slice(0, 255);
}

/** Pause (`by` set) or resume (`by` null) one job; undefined when there is no such job. */
export async function setJobPaused(
  db: Knex,
  jobId: number,
  by: string | null,
): Promise<PauseState | undefined> {
  const q = db('jobs').where('id', jobId);
  if (by !== null)
    await q.whereNull('paused_at').update({ paused_at: db.raw('NOW(3)'), paused_by: by });
  else await q.update({ paused_at: null, paused_by: null });
  return (await db('jobs').select('id', 'paused_at', 'paused_by').where('id', jobId).first()) as
    PauseState | undefined;
}

/**
 * Pause or resume every job of a category; undefined when there is no such
 * category. `changed` counts the jobs whose state changed, `jobs` all of them.
 */
export async function setCategoryPaused(
  db: Knex,
  categoryId: number,
  by: string | null,
): Promise<{ changed: number; jobs: number }> {
  const q = db('jobs').where('category_id', categoryId);
  const changed =
    by !== null
      ? await q.whereNull('paused_at').update({ paused_at: db.raw('NOW(3)'), paused_by: by })
      : await q.whereNotNull('paused_at').update({ paused_at: null, paused_by: null });
  const [row] = (await db('jobs').where('category_id', categoryId).count({ n: '*' })) as Array<{
    n: number | string;
  }>;
  return { changed, jobs: Number(row?.n ?? 0) };
}
