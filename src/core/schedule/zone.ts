/**
 * Time zones for the schedule engine, and the one rule that turns a wall-clock
 * time into an instant.
 *
 * A "wall" is a local date and time encoded as milliseconds as if it were UTC
 * (so 2024-03-31 02:30 local is Date.UTC(2024, 2, 31, 2, 30)); `offsetMs(t)`
 * is the zone's offset at instant t, and the wall an instant shows is
 * t + offsetMs(t). Nothing here reads the process's local time zone.
 *
 * wallToInstant(zone, w) is the earliest instant at which the zone's clock
 * shows w or later. That one definition gives both daylight-saving rules:
 *  - a wall time that does not exist (skipped by a spring-forward change)
 *    maps to the first instant after the gap (02:30 -> 03:00 in Europe/Berlin);
 *  - a wall time that exists twice (fall back) maps to its first instance.
 * The mapping never decreases as w grows, which is what lets the callers
 * search in wall time and count in wall time.
 */
import { IANAZone } from 'luxon';

export const SECOND_MS = 1000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

export interface TimeZone {
  /** 'UTC', a canonical IANA name such as 'Europe/Berlin', or a fixed offset such as 'UTC+05:30'. */
  readonly name: string;
  /** The offset when it never changes (UTC and fixed offsets), else null. */
  readonly fixedOffsetMs: number | null;
  offsetMs(instant: number): number;
}

class FixedZone implements TimeZone {
  constructor(
    readonly name: string,
    readonly fixedOffsetMs: number,
  ) {}
  offsetMs(): number {
    return this.fixedOffsetMs;
  }
}

class NamedZone implements TimeZone {
  readonly fixedOffsetMs = null;
  private readonly zone: IANAZone;
  constructor(readonly name: string) {
    this.zone = IANAZone.create(name);
  }
  offsetMs(instant: number): number {
    // luxon answers in minutes; whole seconds are enough for any zone since 1900.
    return Math.round(this.zone.offset(instant) * 60) * SECOND_MS;
  }
}

export const UTC: TimeZone = new FixedZone('UTC', 0);

export function formatOffset(offsetMs: number): string {
  const sign = offsetMs < 0 ? '-' : '+';
  const minutes = Math.abs(Math.round(offsetMs / MINUTE_MS));
  return `${sign}${pad2(Math.floor(minutes / 60))}:${pad2(minutes % 60)}`;
}

export function fixedZone(offsetMs: number): TimeZone {
  return offsetMs === 0 ? UTC : new FixedZone(`UTC${formatOffset(offsetMs)}`, offsetMs);
}

const namedZones = new Map<string, TimeZone | null>();

/** The IANA zone of that name (any letter case, aliases allowed), or null if the runtime does not know it. */
export function namedZone(name: string): TimeZone | null {
  const cached = namedZones.get(name);
  if (cached !== undefined) return cached;
  let zone: TimeZone | null = null;
  if (/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(name) && IANAZone.isValidZone(name)) {
    const canonical = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions()
      .timeZone;
    zone = canonical === 'UTC' ? UTC : new NamedZone(canonical);
  }
  if (namedZones.size > 1000) namedZones.clear();
  namedZones.set(name, zone);
  return zone;
}

export function instantToWall(zone: TimeZone, instant: number): number {
  return instant + zone.offsetMs(instant);
}

/** The earliest instant at which the zone's clock shows `wall` or later (see the module comment). */
export function wallToInstant(zone: TimeZone, wall: number): number {
  if (zone.fixedOffsetMs !== null) return wall - zone.fixedOffsetMs;
  // Offsets never exceed 18 hours, so the instants that can show `wall` lie
  // within a day of it; a day either side gives the offsets before and after
  // any change near it (zones do not change twice within two days).
  const before = zone.offsetMs(wall - DAY_MS);
  const after = zone.offsetMs(wall + DAY_MS);
  const early = wall - Math.max(before, after);
  const late = wall - Math.min(before, after);
  const candidates = [early, late].filter((t) => instantToWall(zone, t) === wall);
  if (candidates.length > 0) return Math.min(...candidates);
  if (before === after) {
    // Two changes within two days: settle for the instant the local offset suggests.
    const offset = zone.offsetMs(wall - before);
    return wall - offset;
  }
  // `wall` is in a gap: the answer is the instant of the change.
  return firstInstantWhere(early, late, (t) => instantToWall(zone, t) >= wall);
}

/**
 * Binary search for the first instant in (lo, hi] where `pred` holds, given
 * that it is false at lo, true at hi, and changes once in between.
 */
export function firstInstantWhere(lo: number, hi: number, pred: (t: number) => boolean): number {
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (pred(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

export interface OffsetChange {
  /** The first instant with the new offset. */
  readonly at: number;
  readonly offsetBefore: number;
  readonly offsetAfter: number;
}

/** The zone's offset changes in (from, to], found by sampling once a day. */
export function offsetChanges(zone: TimeZone, from: number, to: number): OffsetChange[] {
  const changes: OffsetChange[] = [];
  if (zone.fixedOffsetMs !== null || !(to > from)) return changes;
  let t = from;
  let offset = zone.offsetMs(t);
  while (t < to) {
    const next = Math.min(to, t + DAY_MS);
    const nextOffset = zone.offsetMs(next);
    if (nextOffset !== offset) {
      const before = offset;
      const at = firstInstantWhere(t, next, (x) => zone.offsetMs(x) !== before);
      changes.push({ at, offsetBefore: before, offsetAfter: zone.offsetMs(at) });
    }
    t = next;
    offset = nextOffset;
  }
  return changes;
}

/**
 * If `instant` lies in the second pass of a repeated (fall-back) hour, the
 * wall time at which the repetition ends (the wall shown just before the
 * clock went back); otherwise null.
 */
export function repeatedWallEnd(zone: TimeZone, instant: number): number | null {
  if (zone.fixedOffsetMs !== null) return null;
  const first = wallToInstant(zone, instantToWall(zone, instant));
  if (first >= instant) return null;
  const offsetBefore = zone.offsetMs(first);
  const change = firstInstantWhere(first, instant, (x) => zone.offsetMs(x) !== offsetBefore);
  return change + offsetBefore;
}

export function pad2(n: number): string {
  return String(n).padStart(2, '0');
}
