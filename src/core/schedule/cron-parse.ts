/**
 * Parsing cron expressions: 5 fields (minute hour day-of-month month
 * day-of-week) or 6 with a leading seconds field, plus the @hourly/@daily/...
 * macros; the zone comes from a `TZ=`/`CRON_TZ=` prefix (see schedule.ts),
 * else UTC. croner parses the fields; the range checks here name the field.
 * When they run is in cron-occurrences.ts.
 */
import { Cron, CronPattern } from 'croner';
import { CronSchedule } from './cron-occurrences';
import { fieldSpecs, type FieldSpec } from './cron-fields';
import { fail } from './fail';
import type { TimeZone } from './zone';

const MACROS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const EXPECTED =
  'a cron expression has 5 fields "minute hour day-of-month month day-of-week" (e.g. "0 3 * * *") or 6 with a leading seconds field, or is one of @yearly, @monthly, @weekly, @daily, @hourly';

/** Range checks on plain numbers, so the message names the field; croner checks the rest. */
function checkField(text: string, raw: string, spec: FieldSpec): void {
  for (const item of raw.split(',')) {
    const [base = '', step] = item.split('/');
    if (step !== undefined && !/^\d+$/.test(step)) {
      fail(text, `the ${spec.name} field "${raw}" has step "${step}", expected a whole number`);
    }
    if (step !== undefined && Number(step) === 0) {
      fail(text, `the ${spec.name} field "${raw}" has step 0, expected 1 or more`);
    }
    for (const value of base.split('-')) {
      if (!/^\d+$/.test(value)) continue;
      const n = Number(value);
      if (n < spec.min || n > spec.max) {
        fail(text, `the ${spec.name} field "${raw}" has ${n}, expected ${spec.min}-${spec.max}`);
      }
    }
  }
}

export function parseCronSchedule(
  text: string,
  body: string,
  zone: TimeZone,
  zoneGiven: boolean,
): CronSchedule {
  let expression = body.trim().replace(/\s+/g, ' ');
  if (expression.startsWith('@')) {
    const macro = MACROS[expression.toLowerCase()];
    if (macro === undefined) {
      const what =
        expression.toLowerCase() === '@reboot'
          ? '@reboot has no meaning for CronQ'
          : `unknown macro ${expression}`;
      fail(text, `${what}; ${EXPECTED}`);
    }
    expression = macro;
  }
  const fields = expression.split(' ');
  if (fields.length !== 5 && fields.length !== 6) {
    fail(text, `${EXPECTED}; got ${fields.length} field${fields.length === 1 ? '' : 's'}`);
  }
  const specs = fieldSpecs(fields.length);
  fields.forEach((f, i) => checkField(text, f, specs[i] as FieldSpec));

  let cron: Cron;
  let pattern: CronPattern;
  try {
    const options = { mode: '5-or-6-parts' as const };
    pattern = new CronPattern(expression, 'UTC', options);
    cron = new Cron(expression, { ...options, timezone: 'UTC', paused: true });
  } catch (err) {
    const detail = err instanceof Error ? err.message.replace(/^CronPattern: /, '') : String(err);
    fail(text, `${detail}; ${EXPECTED}`);
  }
  if (cron.nextRun(new Date(Date.UTC(2000, 0, 1))) === null) {
    fail(
      text,
      'the cron expression never matches a date (e.g. 30 February); check the day-of-month and month fields',
    );
  }
  return new CronSchedule(text, fields, zone, zoneGiven, cron, pattern);
}
