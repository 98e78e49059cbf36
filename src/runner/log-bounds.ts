/**
 * Text from a job message (its command, its name) or from an error about
 * one can be megabytes; the runner's own log and the reasons it sends get
 * the start of it and how much was left out.
 */
export const LOGGED_CHARS = 200;

export function clip(s: string | undefined, max = LOGGED_CHARS): string | undefined {
  if (s === undefined || s.length <= max) return s;
  return `${s.slice(0, max)}... (${s.length - max} more characters)`;
}
