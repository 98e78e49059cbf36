import type { Request } from 'express';
import { NotFoundError, ValidationError } from '../core/errors';

/**
 * Query and path parameters of the API, each bounded and refused with a
 * 400 that names it.
 */

export function values(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  const list = (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(','));
  return list.map((s) => s.trim()).filter((s) => s !== '');
}

export function ints(name: string, v: unknown): number[] | undefined {
  const list = values(v);
  if (list === undefined) return undefined;
  return list.map((s) => {
    if (!/^\d{1,10}$/.test(s))
      throw new ValidationError(`${name}: "${s}" is not a whole number`, [
        { path: name, message: 'must be a whole number' },
      ]);
    return Number(s);
  });
}

export function intParam(name: string, v: unknown, def: number, min: number, max: number): number {
  if (v === undefined || v === '') return def;
  const s = String(v);
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < min || n > max)
    throw new ValidationError(`${name}: must be a whole number from ${min} to ${max}`, [
      { path: name, message: `must be a whole number from ${min} to ${max}` },
    ]);
  return n;
}

export function jobIdParam(req: Request): number {
  const raw = String(req.params.id);
  if (!/^\d{1,10}$/.test(raw)) throw new NotFoundError(`no job with id ${raw}`);
  return Number(raw);
}

/** How far a list may be paged: page × per_page past this is refused (an OFFSET reads every row it skips). */
export const MAX_LIST_OFFSET = 100_000;

const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** An ISO 8601 time (`2024-05-01`, `2024-05-01T13:00:00Z`, with an offset); without a zone, UTC. */
export function isoTimeParam(name: string, v: unknown): Date | undefined {
  if (v === undefined || v === '') return undefined;
  const s = String(v);
  const m = s.length <= 40 ? ISO_TIME.exec(s) : null;
  const t = m ? Date.parse(m[4] !== undefined && m[7] === undefined ? `${s}Z` : s) : NaN;
  if (!Number.isFinite(t))
    throw new ValidationError(`${name}: expected an ISO 8601 time such as 2024-05-01T13:00:00Z`, [
      { path: name, message: 'expected an ISO 8601 time such as 2024-05-01T13:00:00Z' },
    ]);
  return new Date(t);
}

/** A run id: 32 hex digits (any case; stored lowercase). */
export function runIdParam(req: Request): string {
  const raw = String(req.params.run_id);
  if (!/^[0-9a-fA-F]{32}$/.test(raw))
    throw new ValidationError('run id: expected 32 hexadecimal digits', [
      { path: 'run_id', message: 'expected 32 hexadecimal digits' },
    ]);
  return raw.toLowerCase();
}

/**
 * Exact names, each given whole (`?name=a&name=b`, never split at commas),
 * at most `max` of at most 255 characters.
 */
export function exactNames(name: string, v: unknown, max: number): string[] | undefined {
  if (v === undefined) return undefined;
  const list = (Array.isArray(v) ? v : [v]).map((x) => String(x));
  if (list.length > max || list.some((s) => s === '' || [...s].length > 255))
    throw new ValidationError(`${name}: at most ${max} names of 1-255 characters`, [
      { path: name, message: `at most ${max} names of 1-255 characters` },
    ]);
  return list;
}
