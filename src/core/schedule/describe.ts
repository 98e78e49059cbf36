/** Small wording helpers shared by the ISO and cron descriptions. */
import { pad2 } from './zone';

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

/** "every day", "every 2 days". */
export function every(n: number, unit: string): string {
  return n === 1 ? `every ${unit}` : `every ${n} ${unit}s`;
}

/** "1 month", "2 days". */
export function quantity(n: number, unit: string): string {
  return n === 1 ? `1 ${unit}` : `${n} ${unit}s`;
}

/** "a", "a and b", "a, b and c". */
export function joinWords(words: readonly string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

/** "03:00", or "03:00:30" when the seconds are not zero; `wall` is a wall time in ms (see zone.ts). */
export function clockTime(wall: number): string {
  const d = new Date(wall);
  const hm = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
  const s = d.getUTCSeconds();
  return s === 0 ? hm : `${hm}:${pad2(s)}`;
}

export function clockTimeOf(hour: number, minute: number, second: number): string {
  return clockTime(((hour * 60 + minute) * 60 + second) * 1000);
}

/** "2024-01-01 00:00" (seconds only when not zero). */
export function dateTime(wall: number): string {
  return `${new Date(wall).toISOString().slice(0, 10)} ${clockTime(wall)}`;
}
