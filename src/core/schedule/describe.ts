/**
 * Schedules in English, for both forms: Schedule.describe() of an ISO
 * interval ("every day at 03:00 UTC") and of a cron expression ("at 03:00
 * on Monday to Friday (Europe/Berlin)"), with the wording helpers they
 * share. A cron expression too rich to say in words is shown as written.
 */
import { MONTHS, WEEKDAYS } from './calendar';
import { fieldSpecs, type FieldSpec } from './cron-fields';
import type { Duration } from './iso-occurrences';
import { pad2 } from './zone';

/** "every day", "every 2 days". */
function every(n: number, unit: string): string {
  return n === 1 ? `every ${unit}` : `every ${n} ${unit}s`;
}

/** "1 month", "2 days". */
function quantity(n: number, unit: string): string {
  return n === 1 ? `1 ${unit}` : `${n} ${unit}s`;
}

/** "a", "a and b", "a, b and c". */
function joinWords(words: readonly string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

/** "03:00", or "03:00:30" when the seconds are not zero; `wall` is a wall time in ms (see zone.ts). */
function clockTime(wall: number): string {
  const d = new Date(wall);
  const hm = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
  const s = d.getUTCSeconds();
  return s === 0 ? hm : `${hm}:${pad2(s)}`;
}

function clockTimeOf(hour: number, minute: number, second: number): string {
  return clockTime(((hour * 60 + minute) * 60 + second) * 1000);
}

/** "2024-01-01 00:00" (seconds only when not zero). */
function dateTime(wall: number): string {
  return `${new Date(wall).toISOString().slice(0, 10)} ${clockTime(wall)}`;
}

export interface IsoDescription {
  readonly duration: Duration;
  readonly zoneName: string;
  /** The start (forward) or end (backward) as a wall time in the zone. */
  readonly anchorWall: number;
  readonly backward: boolean;
  /** n of Rn, or null for unbounded. */
  readonly count: number | null;
  /** For R1/...: the one occurrence as a wall time in the zone. */
  readonly onlyWall?: number;
}

export function describeIso(s: IsoDescription): string {
  const d = s.duration;
  const units: Array<[number, string]> = [
    [d.years, 'year'],
    [d.months, 'month'],
    [d.weeks, 'week'],
    [d.days, 'day'],
    [d.hours, 'hour'],
    [d.minutes, 'minute'],
    [d.seconds, 'second'],
  ];
  const present = units.filter(([n]) => n > 0);
  const zoneName = s.zoneName;
  const at = `at ${clockTime(s.anchorWall)} ${zoneName}`;
  const anchorText = `${dateTime(s.anchorWall)} ${zoneName}`;
  const wallDate = new Date(s.anchorWall);
  let phrase: string;
  let saysWhen = true;
  if (present.length === 1) {
    const [n, unit] = present[0] as [number, string];
    phrase = every(n, unit);
    if (unit === 'day') phrase += ` ${at}`;
    else if (unit === 'week') phrase += ` on ${WEEKDAYS[wallDate.getUTCDay()]} ${at}`;
    else if (unit === 'month') phrase += ` on day ${wallDate.getUTCDate()} ${at}`;
    else if (unit === 'year') {
      phrase += ` on ${wallDate.getUTCDate()} ${MONTHS[wallDate.getUTCMonth()]} ${at}`;
    } else saysWhen = false;
  } else {
    phrase = `every ${joinWords(present.map(([n, unit]) => quantity(n, unit)))}`;
    saysWhen = false;
  }
  if (s.count === 1 && s.onlyWall !== undefined) {
    return `once at ${dateTime(s.onlyWall)} ${zoneName}`;
  }
  const direction = s.backward ? 'until' : 'from';
  if (s.count !== null) return `${phrase}, ${s.count} times ${direction} ${anchorText}`;
  if (s.backward) return `${phrase} until ${anchorText}`;
  const calendarFree = d.years * 12 + d.months === 0 && d.weeks * 7 + d.days === 0;
  const phaseless = saysWhen || calendarFree;
  return phaseless ? phrase : `${phrase} from ${anchorText}`;
}

type SimpleField =
  { kind: 'any' } | { kind: 'step'; step: number } | { kind: 'values'; values: number[] };

/** '*', '*\/n', or a list of numbers/names/ranges; null for anything richer (L, W, #, stepped ranges). */
function simpleField(raw: string, spec: FieldSpec): SimpleField | null {
  if (raw === '*' || raw === '?') return { kind: 'any' };
  const step = /^\*\/(\d+)$/.exec(raw);
  if (step) return { kind: 'step', step: Number(step[1]) };
  const values: number[] = [];
  const value = (token: string): number | null => {
    if (/^\d+$/.test(token)) return Number(token);
    const i = spec.names?.indexOf(token.toUpperCase()) ?? -1;
    return i >= 0 ? i + spec.min : null;
  };
  for (const item of raw.split(',')) {
    const [a, b, ...rest] = item.split('-');
    if (rest.length > 0 || a === undefined) return null;
    const lo = value(a);
    const hi = b === undefined ? lo : value(b);
    if (lo === null || hi === null || hi < lo) return null;
    for (let v = lo; v <= hi; v++) values.push(spec.name === 'day-of-week' ? v % 7 : v);
  }
  const unique = [...new Set(values)].sort((x, y) => x - y);
  return { kind: 'values', values: unique };
}

function single(f: SimpleField | null): number | null {
  return f?.kind === 'values' && f.values.length === 1 ? (f.values[0] as number) : null;
}

function weekdays(values: number[]): string {
  const first = values[0] as number;
  const last = values[values.length - 1] as number;
  if (values.length >= 3 && last - first === values.length - 1) {
    return `${WEEKDAYS[first]} to ${WEEKDAYS[last]}`;
  }
  return joinWords(values.map((v) => WEEKDAYS[v] as string));
}

/** The days part: [for "at hh:mm ..." phrases, for "every n minutes ..." phrases], or null. */
function dayPhrases(
  dom: SimpleField | null,
  month: SimpleField | null,
  dow: SimpleField | null,
): [string, string] | null {
  if (!dom || !month || !dow) return null;
  const domAny = dom.kind === 'any';
  const monthAny = month.kind === 'any';
  const dowAny = dow.kind === 'any';
  if (dom.kind === 'step' || month.kind === 'step' || dow.kind === 'step') return null;
  const monthNames =
    month.kind === 'values' ? joinWords(month.values.map((m) => MONTHS[m - 1] as string)) : '';
  if (domAny && monthAny && dowAny) return ['every day', ''];
  if (domAny && monthAny && dow.kind === 'values') {
    const p = `on ${weekdays(dow.values)}`;
    return [p, p];
  }
  if (dom.kind === 'values' && dowAny) {
    const days = dom.values;
    if (monthAny) {
      const p =
        days.length === 1
          ? `on day ${days[0]} of every month`
          : `on days ${joinWords(days.map(String))} of every month`;
      return [p, p];
    }
    if (days.length === 1) {
      const p = `on ${days[0]} ${monthNames}`;
      return [p, p];
    }
    return null;
  }
  if (domAny && dowAny && !monthAny) return [`every day in ${monthNames}`, `in ${monthNames}`];
  return null;
}

/** The time part: ['at', "at 03:00"] or ['every', "every 5 minutes"], or null. */
function timePhrase(
  sec: SimpleField | null,
  min: SimpleField | null,
  hour: SimpleField | null,
): ['at' | 'every', string] | null {
  const s = single(sec);
  const m = single(min);
  if (s !== null && m !== null && hour?.kind === 'values' && hour.values.length <= 4) {
    return ['at', `at ${joinWords(hour.values.map((h) => clockTimeOf(h, m, s)))}`];
  }
  if (hour?.kind === 'any') {
    if (min?.kind === 'any' && sec?.kind === 'any') return ['every', 'every second'];
    if (min?.kind === 'any' && sec?.kind === 'step') return ['every', every(sec.step, 'second')];
    if (s === 0 && min?.kind === 'any') return ['every', 'every minute'];
    if (s === 0 && min?.kind === 'step') return ['every', every(min.step, 'minute')];
    if (s === 0 && m === 0) return ['every', 'every hour'];
    if (s === 0 && m !== null) return ['every', `at minute ${m} of every hour`];
  }
  if (s === 0 && m === 0 && hour?.kind === 'step') return ['every', every(hour.step, 'hour')];
  return null;
}

export function describeCron(
  fields: readonly string[],
  zoneName: string,
  zoneGiven: boolean,
): string {
  const six = fields.length === 6;
  const specs = fieldSpecs(fields.length);
  const parsed = fields.map((f, i) => simpleField(f, specs[i] as FieldSpec));
  const [sec, min, hour, dom, month, dow] = six
    ? parsed
    : [{ kind: 'values', values: [0] } as SimpleField, ...parsed];
  const time = timePhrase(sec ?? null, min ?? null, hour ?? null);
  const days = dayPhrases(dom ?? null, month ?? null, dow ?? null);
  const zone = ` (${zoneName})`;
  if (time === null || days === null) {
    return `cron: ${zoneGiven ? `TZ=${zoneName} ` : ''}${fields.join(' ')}`;
  }
  const [kind, words] = time;
  const dayWords = kind === 'at' ? days[0] : days[1];
  return `${words}${dayWords === '' ? '' : ` ${dayWords}`}${zone}`;
}
