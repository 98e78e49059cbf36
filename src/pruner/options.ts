import { Duration } from 'luxon';
import { UsageError } from '../core/errors';

/**
 * What one pruner invocation deletes. Exactly one mode per run: mixing an id
 * range with "keep the newest N" or an age cutoff has no single meaning, so
 * such flags are refused rather than guessed at.
 */
export type PruneMode =
  | { kind: 'range'; first: number; last: number }
  | { kind: 'keep'; keep: number }
  | { kind: 'older-than'; age: Duration; text: string };

export interface PruneOptions {
  mode: PruneMode;
  /** Rows (or ids, in range mode) per DELETE statement. */
  chunk: number;
}

export interface RawPruneFlags {
  first?: string;
  last?: string;
  interval?: string;
  keep?: string;
  olderThan?: string;
}

const MAX_CHUNK = 100_000;

function wholeNumber(
  flag: string,
  raw: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const t = raw.trim();
  if (!/^-?\d+$/.test(t)) throw new UsageError(`${flag} must be a whole number, got "${raw}"`);
  const n = Number(t);
  if (n < min) throw new UsageError(`${flag} must be at least ${min}, got ${n}`);
  if (n > max) throw new UsageError(`${flag} must be at most ${max}, got ${n}`);
  return n;
}

const SHORT_UNITS: Record<string, string> = {
  s: 'seconds',
  m: 'minutes',
  h: 'hours',
  d: 'days',
  w: 'weeks',
};

/**
 * An age such as `P30D`, `PT12H`, `P1M` (ISO 8601 duration) or the short
 * forms `30d`, `12h`, `90m`, `45s`, `2w`. Months and years are calendar
 * units: the cutoff is computed from the database clock with luxon.
 */
export function parseAge(raw: string): Duration {
  const t = raw.trim();
  const short = /^(\d+)\s*([smhdw])$/i.exec(t);
  let d: Duration;
  if (short) {
    d = Duration.fromObject({ [SHORT_UNITS[short[2]!.toLowerCase()]!]: Number(short[1]) });
  } else {
    d = Duration.fromISO(t.toUpperCase());
    if (!d.isValid)
      throw new UsageError(
        `--older-than must be an ISO 8601 duration (P30D, PT12H) or a number with s, m, h, d or w (30d), got "${raw}"`,
      );
  }
  if (d.toMillis() <= 0)
    throw new UsageError(`--older-than must be a positive duration, got "${raw}"`);
  return d;
}

/** Turn the flags into one mode, refusing contradictory or incomplete ones with a one-line reason. */
export function resolvePruneOptions(f: RawPruneFlags): PruneOptions {
  const hasRange = f.first !== undefined || f.last !== undefined;
  const modes = [
    hasRange && '--first/--last',
    f.keep !== undefined && '--keep',
    f.olderThan !== undefined && '--older-than',
  ].filter(Boolean) as string[];
  if (modes.length === 0)
    throw new UsageError('say what to delete: --first N --last M, --keep N, or --older-than AGE');
  if (modes.length > 1)
    throw new UsageError(`${modes.join(' and ')} cannot be combined: choose one`);

  const chunk =
    f.interval === undefined ? 100 : wholeNumber('--interval', f.interval, 1, MAX_CHUNK);

  if (hasRange) {
    if (f.first === undefined)
      throw new UsageError('--last needs --first (the lowest event id to delete)');
    if (f.last === undefined)
      throw new UsageError('--first needs --last (the highest event id to delete)');
    const first = wholeNumber('--first', f.first, 0);
    const last = wholeNumber('--last', f.last, 0);
    if (first > last) throw new UsageError(`--first (${first}) is greater than --last (${last})`);
    return { mode: { kind: 'range', first, last }, chunk };
  }
  if (f.keep !== undefined)
    return { mode: { kind: 'keep', keep: wholeNumber('--keep', f.keep, 0) }, chunk };
  return {
    mode: { kind: 'older-than', age: parseAge(f.olderThan!), text: f.olderThan!.trim() },
    chunk,
  };
}
