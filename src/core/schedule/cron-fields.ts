/** The fields of a cron expression, for the range checks (cron-parse.ts) and the English (describe.ts). */
import { MONTHS, WEEKDAYS } from './calendar';

export interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

export const SECOND: FieldSpec = { name: 'second', min: 0, max: 59 };
export const FIVE_FIELDS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS.map((m) => m.slice(0, 3).toUpperCase()) },
  { name: 'day-of-week', min: 0, max: 7, names: WEEKDAYS.map((d) => d.slice(0, 3).toUpperCase()) },
];

/** The specs of 5 fields, or of 6 with a leading seconds field. */
export function fieldSpecs(count: number): readonly FieldSpec[] {
  return count === 6 ? [SECOND, ...FIVE_FIELDS] : FIVE_FIELDS;
}
