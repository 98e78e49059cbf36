import { MAX_POLICY_DURATION_MS } from '../policies/duration';
import { MAX_TARGETS, NOTIFY_EVENTS, targetLabel, type NotifyTarget } from './targets';

/**
 * The targets every job notifies (CRONQ_NOTIFY_* of cronq-results), as the
 * admin shows them: cronq-results records them in `settings` when it starts
 * (results/notify/global-targets.ts) and the web, which has not its
 * settings, reads them (web/global-targets.ts). Only shown words are
 * stored: a webhook by its origin (targetLabel), never its path, query,
 * token or the signing secret.
 */

/** The `settings` row's name. */
export const GLOBAL_TARGETS_SETTING = 'notify.global_targets';

export interface ShownTarget {
  /** targetLabel: "webhook https://hooks.example.com/…" or "e-mail a@example.com". */
  label: string;
  on: string[];
  /** Webhooks: json or slack; null for e-mail. */
  format: 'json' | 'slack' | null;
  repeat_after_ms: number;
}

/** Longest label kept when reading (ten addresses of 254 characters fit). */
const MAX_LABEL_LENGTH = 2_600;

export function shownTargets(targets: readonly NotifyTarget[]): ShownTarget[] {
  return targets.map((t) => ({
    label: targetLabel(t),
    on: [...t.on],
    format: t.webhook ? (t.format ?? 'json') : null,
    repeat_after_ms: t.repeatAfterMs,
  }));
}

/** The stored value: stable JSON, so an unchanged configuration stores the same text. */
export function shownTargetsText(targets: readonly NotifyTarget[]): string {
  return JSON.stringify(shownTargets(targets));
}

function shownTarget(raw: unknown): ShownTarget | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (typeof r.label !== 'string' || r.label === '') return undefined;
  const on = Array.isArray(r.on)
    ? NOTIFY_EVENTS.filter((e) => (r.on as unknown[]).includes(e))
    : [];
  const ms = r.repeat_after_ms;
  return {
    label: r.label.slice(0, MAX_LABEL_LENGTH),
    on,
    format: r.format === 'json' || r.format === 'slack' ? r.format : null,
    repeat_after_ms:
      typeof ms === 'number' && Number.isSafeInteger(ms) && ms >= 0 && ms <= MAX_POLICY_DURATION_MS
        ? ms
        : 0,
  };
}

/**
 * Read a stored value back, bounded: at most MAX_TARGETS targets, known
 * events only, labels cut; a value that is not such a list reads as none.
 */
export function parseShownTargets(text: string): ShownTarget[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(raw)) return [];
  return raw
    .slice(0, MAX_TARGETS)
    .map(shownTarget)
    .filter((t): t is ShownTarget => t !== undefined);
}
