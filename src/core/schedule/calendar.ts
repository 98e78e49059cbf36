/**
 * Calendar arithmetic shared by the ISO and cron engines: month lengths,
 * leap years, wall times as UTC milliseconds (see zone.ts), the English
 * names of months and weekdays, and the check every entry point makes on
 * its Date arguments.
 */

export const WEEKDAYS = [
  'Sunday',
  'Monday',
  'Tuesday',
  'Wednesday',
  'Thursday',
  'Friday',
  'Saturday',
] as const;

export const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
] as const;

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function daysInMonth(year: number, month0: number): number {
  return month0 === 1 && isLeapYear(year) ? 29 : (MONTH_DAYS[month0] as number);
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** Date.UTC without its mapping of years 0-99 to 1900-1999. */
export function utcWall(year: number, month0: number, day: number, ms = 0): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month0, day);
  return d.getTime() + ms;
}

/**
 * Calendar arithmetic on a wall time: add months (clamping the day to the
 * target month's length), then days; the time of day is kept.
 */
export function addCalendar(wall: number, months: number, days: number): number {
  const d = new Date(wall);
  const timeOfDay = wall - utcWall(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const monthIndex = d.getUTCFullYear() * 12 + d.getUTCMonth() + months;
  const year = Math.floor(monthIndex / 12);
  const month0 = monthIndex - year * 12;
  const day = Math.min(d.getUTCDate(), daysInMonth(year, month0));
  return utcWall(year, month0, day + days, timeOfDay);
}

/** The instant of a Date argument; throws TypeError naming the argument when it is not a valid Date. */
export function checkDate(d: Date, name: string): number {
  const t = d instanceof Date ? d.getTime() : NaN;
  if (Number.isNaN(t)) throw new TypeError(`${name} must be a valid Date`);
  return t;
}
