import { ConfigError } from './errors';

/**
 * Reading one setting's value: a whole number, a number or a yes/no within
 * bounds, or a ConfigError naming the setting, the value (passwords hidden)
 * and the accepted form.
 */

export type Env = Readonly<Record<string, string | undefined>>;

export function fail(setting: string, value: string, accepted: string): never {
  throw new ConfigError(
    `${setting}=${JSON.stringify(redact(value))} is not valid: expected ${accepted}`,
  );
}

/** Hide a password inside a URL before it goes into a message. */
export function redact(value: string): string {
  return value.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@');
}

export function intSetting(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    fail(name, raw, `a whole number from ${min} to ${max}`);
  return n;
}

export function numberSetting(
  env: Env,
  name: string,
  def: number,
  min: number,
  max: number,
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) fail(name, raw, `a number from ${min} to ${max}`);
  return n;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['', '0', 'false', 'no', 'off']);

export function boolSetting(env: Env, name: string, def: boolean): boolean {
  const raw = env[name];
  if (raw === undefined) return def;
  const v = raw.trim().toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  fail(name, raw, 'one of 1, true, yes, on, 0, false, no, off');
}
