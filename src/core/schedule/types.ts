/** What every parsed schedule offers; see schedule.ts for the syntax and the rules. */
export interface Schedule {
  /** The schedule text as given, trimmed. */
  readonly text: string;
  readonly kind: 'iso' | 'cron';
  /**
   * The zone wall-clock times are meant in: 'UTC', a canonical IANA name, or
   * (for an ISO start written with an offset and no zone) a fixed offset
   * written 'UTC+05:30', which luxon accepts as a zone.
   */
  readonly timeZone: string;
  /**
   * Seconds between occurrences when that never varies (PTnH/M/S, and PnD/PnW
   * in UTC or a fixed offset), else null. Used for the original `interval` column.
   */
  readonly fixedPeriodSeconds: number | null;
  /**
   * The first occurrence strictly after `after`; null when there is none: an
   * Rn/... schedule is exhausted, or the next occurrence lies past
   * 9999-12-31T23:59:59.999Z, the end of the calendar the database stores
   * (range.ts). Never a date outside 1000-01-01 .. 9999-12-31.
   */
  next(after: Date): Date | null;
  /**
   * True when next(after) is null because the next occurrence lies past the
   * storable calendar (not because an Rn/... schedule ran out).
   */
  endsInCalendar(after: Date): boolean;
  /**
   * The last occurrence of a schedule that ends (Rn/...), if storable; null
   * for one that never ends (cron, R/...).
   */
  last(): Date | null;
  /** Up to n occurrences strictly after `after`, in order (only storable ones). */
  nextN(after: Date, n: number): Date[];
  /**
   * How many occurrences lie in (from, to], at most `cap` (default 1e9),
   * counting only the storable calendar. Constant time for ISO schedules;
   * for cron exact over up to 11 years (work proportional to the matching
   * days), and over a longer range estimated from its last 11 years, so the
   * work is bounded whatever the range.
   */
  countBetween(from: Date, to: Date, cap?: number): number;
  /** The schedule in words, e.g. "every day at 03:00 UTC". */
  describe(): string;
}
