/**
 * Small pure helpers the templates and the JSON API share: how a time, a
 * duration, a status and a command are shown. Kept free of Express so they
 * are easy to test and the views stay logic-light.
 */
import { showInvisible } from '../core/category-text';
import { RUN_STATUSES } from '../core/runs';

/** Line breaks and tabs are layout in a <pre>, not a disguise: they stay. */
const KEPT_IN_PAGES: ReadonlySet<string> = new Set(['\n', '\r', '\t']);

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&#34;',
  "'": '&#39;',
};

/**
 * The escape of every `<%= %>` in the views (EJS's `escape` option): HTML
 * special characters escaped, and every invisible or direction-changing
 * character (bidi overrides, zero-width characters, C0/C1 controls, line
 * and paragraph separators, BOM) written as a visible ⟨U+202E⟩, so a
 * command or name cannot show as something it is not.
 */
export function escapeVisible(value: unknown): string {
  if (value === undefined || value === null) return '';
  return showInvisible(String(value), KEPT_IN_PAGES).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** ISO 8601 UTC with Z, or null: the one time format of the API. */
export function isoUtc(d: Date | null | undefined): string | null {
  return d ? d.toISOString() : null;
}

/** "2024-05-01 13:04:05 UTC", what a person reads on hover. */
export function utcText(d: Date | null | undefined): string {
  if (!d) return '';
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

const UNITS: Array<[number, string]> = [
  [365 * 86400, 'y'],
  [60 * 86400, 'mo'],
  [86400, 'd'],
  [3600, 'h'],
  [60, 'min'],
  [1, 's'],
];

/** "3 min ago", "in 2 h", "just now". */
export function relativeTime(d: Date | null | undefined, now: Date): string {
  if (!d) return '—';
  const diff = Math.round((d.getTime() - now.getTime()) / 1000);
  const abs = Math.abs(diff);
  if (abs < 2) return 'just now';
  for (const [size, unit] of UNITS) {
    if (abs >= size) {
      const n = Math.floor(abs / (size === 60 * 86400 ? 30 * 86400 : size));
      return diff < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
    }
  }
  return 'just now';
}

/** "1.2 s", "3 min 4 s", "2 h 5 min"; a zero second part is left out: "1 min", "2 h". */
export function durationText(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return Math.floor(s % 60) === 0 ? `${m} min` : `${m} min ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`;
}

/**
 * How long a run ran, the same on every page: its recorded run_time, else
 * (a lost or killed run, whose runner never reported one) from its start
 * to when it was finished; '—' when it never started.
 */
export function runDurationText(run: {
  run_time: number | null;
  started_at: Date | null;
  finished_at: Date | null;
}): string {
  if (run.run_time !== null) return durationText(run.run_time * 1000);
  if (run.started_at && run.finished_at)
    return durationText(run.finished_at.getTime() - run.started_at.getTime());
  return '—';
}

/** A run's statuses, and a job's "retrying" (docs/policies.md). */
const KNOWN_STATUSES = new Set<string>([...RUN_STATUSES, 'retrying']);

/** CSS modifier of a status badge; unknown words (legacy rows) get a neutral one. */
export function statusClass(status: string | null | undefined): string {
  // "retrying (2 of 3)" is coloured as retrying.
  const s = (status ?? '')
    .trim()
    .toLowerCase()
    .replace(/ \(.*\)$/, '');
  return KNOWN_STATUSES.has(s) ? `st-${s}` : 'st-unknown';
}

/**
 * The history dots of `/` in words, for a screen reader (the dots are
 * colour only): "last 3 runs, newest last: succeeded, failed, succeeded".
 */
export function historyText(runs: ReadonlyArray<{ status: string }>): string {
  if (runs.length === 0) return 'no runs yet';
  const what = runs.length === 1 ? 'last run' : `last ${runs.length} runs, newest last`;
  return `${what}: ${runs.map((r) => statusText(r.status)).join(', ')}`;
}

/** "timed out" rather than "timed_out". */
export function statusText(status: string | null | undefined): string {
  const s = (status ?? '').trim();
  return s === '' ? 'never run' : s.replace(/_/g, ' ');
}

/**
 * The command as the original admin showed it: one line per part, split
 * after each `;` and `&&` (the separator stays at the end of its part so the
 * text still reads as the same shell line).
 */
export function splitCommand(command: string | null | undefined): string[] {
  if (!command) return [];
  const parts: string[] = [];
  let rest = command;
  for (;;) {
    const m = /;|&&/.exec(rest);
    if (!m) break;
    const end = m.index + m[0].length;
    parts.push(rest.slice(0, end).trim());
    rest = rest.slice(end);
  }
  if (rest.trim() !== '') parts.push(rest.trim());
  return parts.filter((p) => p !== '');
}

/**
 * CRONQ_LOG_URL_TEMPLATE with {job_id}, {run_id}, {start_time}, {end_time}
 * replaced (times ISO 8601 UTC, URL-encoded). A run still going ends "a few
 * seconds from now" so the search includes its latest lines.
 */
export function logUrl(
  template: string | undefined,
  run: {
    job_id: number;
    run_id: string;
    started_at: Date | null;
    queued_at: Date | null;
    finished_at: Date | null;
  },
  now: Date,
): string | null {
  if (!template) return null;
  const start = run.started_at ?? run.queued_at ?? now;
  const end = run.finished_at ?? new Date(now.getTime() + 5000);
  const values: Record<string, string> = {
    job_id: String(run.job_id),
    run_id: run.run_id,
    start_time: start.toISOString(),
    end_time: end.toISOString(),
  };
  return template.replace(/\{(job_id|run_id|start_time|end_time)\}/g, (_, k: string) =>
    encodeURIComponent(values[k]!),
  );
}
