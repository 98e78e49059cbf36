import { createHash } from 'node:crypto';
import { DurationError, parsePolicyDuration } from '../policies/duration';

/**
 * Notification targets (docs/notifications.md): a webhook or a list of
 * e-mail addresses, the events that go to it, and how often a job that
 * keeps failing may repeat itself there. Read from a category file's
 * `notify` field and from the CRONQ_NOTIFY_* settings; every part is
 * bounded, since a file may come from anyone holding the API token.
 */

export const NOTIFY_EVENTS = [
  'failed',
  'timed_out',
  'lost',
  'missed',
  'overdue',
  'recovered',
  'retry',
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** Final outcomes that count as failures for notifications (and for `recovered`). */
export const FAILURE_EVENTS: readonly NotifyEvent[] = ['failed', 'timed_out', 'lost', 'missed'];

/** What a target gets when its `on` is not given: every event except `retry`. */
export const DEFAULT_ON: readonly NotifyEvent[] = NOTIFY_EVENTS.filter((e) => e !== 'retry');

export const MAX_TARGETS = 10;
export const MAX_URL_LENGTH = 2048;
export const MAX_ADDRESSES = 10;
export const MAX_ADDRESS_LENGTH = 254;
export const DEFAULT_REPEAT_AFTER_MS = 3_600_000;
export const MIN_REPEAT_AFTER_MS = 60_000;

export interface NotifyTarget {
  on: NotifyEvent[];
  webhook?: string;
  /** Webhook body: plain JSON, or JSON with a Slack-compatible `text`. */
  format?: 'json' | 'slack';
  email?: string[];
  repeatAfterMs: number;
}

/** JSON Schema of the `notify` field; never stricter than parseNotifyTargets, whose words replace its messages. */
export const NOTIFY_SCHEMA = {
  type: ['array', 'null'],
  maxItems: MAX_TARGETS,
  description:
    'Who is told about this category\'s jobs: webhooks and e-mail, each with the events ("on") it wants. See docs/notifications.md.',
  items: {
    type: 'object',
    additionalProperties: false,
    properties: {
      on: {
        type: 'array',
        minItems: 1,
        maxItems: NOTIFY_EVENTS.length,
        items: { enum: [...NOTIFY_EVENTS] },
        description: `Events to send; default ${DEFAULT_ON.join(', ')}.`,
      },
      webhook: {
        type: 'string',
        maxLength: MAX_URL_LENGTH,
        description: 'An http:// or https:// URL that gets a JSON POST.',
      },
      format: { enum: ['json', 'slack'], description: 'slack: add a Slack-compatible "text".' },
      email: {
        type: 'array',
        minItems: 1,
        maxItems: MAX_ADDRESSES,
        items: { type: 'string', maxLength: MAX_ADDRESS_LENGTH },
      },
      repeat_after: {
        type: 'string',
        maxLength: 40,
        description:
          'A job that keeps failing notifies again at most this often (ISO 8601 duration); default "PT1H".',
      },
    },
  },
} as const;

const ADDRESS =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** Why `url` cannot be a webhook, or null. */
export function webhookUrlProblem(url: unknown): string | null {
  if (typeof url !== 'string' || url.length === 0) return 'must be an http:// or https:// URL';
  if (url.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  if (!/^[\x21-\x7e]+$/.test(url)) return 'must be a URL of plain characters (no spaces)';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'must be an http:// or https:// URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return 'must be an http:// or https:// URL';
  if (u.username || u.password)
    return 'must not carry a user or password (use CRONQ_WEBHOOK_SECRET to sign instead)';
  return null;
}

/** Why `a` cannot be an e-mail address, or null. */
export function addressProblem(a: unknown): string | null {
  if (typeof a !== 'string' || a.length > MAX_ADDRESS_LENGTH || !ADDRESS.test(a))
    return `must be e-mail addresses such as "ops@example.com" (at most ${MAX_ADDRESS_LENGTH} characters each)`;
  return null;
}

/**
 * Read a `notify` value. Returns the targets and the problems, each as
 * `[index].field: message` relative to the field; any problem refuses the
 * whole value.
 */
export function parseNotifyTargets(raw: unknown): { targets: NotifyTarget[]; errors: string[] } {
  const errors: string[] = [];
  if (raw === undefined || raw === null) return { targets: [], errors };
  if (!Array.isArray(raw)) return { targets: [], errors: ['must be a list of targets'] };
  if (raw.length > MAX_TARGETS)
    return { targets: [], errors: [`has ${raw.length} targets; at most ${MAX_TARGETS}`] };
  const targets: NotifyTarget[] = [];
  raw.forEach((t: unknown, i) => {
    const at = `[${i}]`;
    if (typeof t !== 'object' || t === null || Array.isArray(t)) {
      errors.push(`${at}: must be an object such as { "on": ["failed"], "webhook": "https://…" }`);
      return;
    }
    const o = t as Record<string, unknown>;
    const before = errors.length;
    const unknown = Object.keys(o).filter(
      (k) => !['on', 'webhook', 'format', 'email', 'repeat_after'].includes(k),
    );
    if (unknown.length > 0)
      errors.push(
        `${at}: unknown field "${unknown[0]!.slice(0, 40)}"${unknown.length > 1 ? ` (and ${unknown.length - 1} more)` : ''}`,
      );
    const hasWebhook = o.webhook !== undefined;
    const hasEmail = o.email !== undefined;
    if (hasWebhook === hasEmail)
      errors.push(`${at}: must have exactly one of "webhook" or "email"`);
    if (hasWebhook) {
      const p = webhookUrlProblem(o.webhook);
      if (p) errors.push(`${at}.webhook: ${p}`);
    }
    if (hasEmail) {
      const list = o.email;
      if (!Array.isArray(list) || list.length === 0 || list.length > MAX_ADDRESSES)
        errors.push(`${at}.email: must list 1 to ${MAX_ADDRESSES} addresses`);
      else {
        const bad = list.map(addressProblem).find((p) => p !== null);
        if (bad) errors.push(`${at}.email: ${bad}`);
      }
    }
    if (o.format !== undefined && o.format !== 'json' && o.format !== 'slack')
      errors.push(`${at}.format: must be "json" or "slack"`);
    if (o.format !== undefined && !hasWebhook)
      errors.push(`${at}.format: only a webhook has a format`);
    const on = o.on ?? DEFAULT_ON;
    if (
      !Array.isArray(on) ||
      on.length === 0 ||
      on.length > NOTIFY_EVENTS.length ||
      !on.every((e) => (NOTIFY_EVENTS as readonly unknown[]).includes(e))
    )
      errors.push(`${at}.on: must list one or more of ${NOTIFY_EVENTS.join(', ')}`);
    let repeatAfterMs = DEFAULT_REPEAT_AFTER_MS;
    if (o.repeat_after !== undefined) {
      try {
        repeatAfterMs = parsePolicyDuration(o.repeat_after, `${at}.repeat_after`);
        if (repeatAfterMs < MIN_REPEAT_AFTER_MS)
          errors.push(`${at}.repeat_after: must be at least one minute (PT1M)`);
      } catch (err) {
        if (!(err instanceof DurationError)) throw err;
        errors.push(err.message);
      }
    }
    if (errors.length > before) return;
    const target: NotifyTarget = { on: [...new Set(on as NotifyEvent[])], repeatAfterMs };
    if (hasWebhook) {
      target.webhook = o.webhook as string;
      target.format = (o.format as 'json' | 'slack' | undefined) ?? 'json';
    } else target.email = [...new Set(o.email as string[])];
    targets.push(target);
  });
  return { targets: errors.length > 0 ? [] : targets, errors };
}

/** Read a stored categories.notify; [] for NULL or text that no longer passes (a hand-edited row). */
export function targetsOfText(text: string | null | undefined): NotifyTarget[] {
  if (!text) return [];
  try {
    const { targets, errors } = parseNotifyTargets(JSON.parse(text));
    return errors.length > 0 ? [] : targets;
  } catch {
    return [];
  }
}

/** A stable short key of a target (notifications.target_key; the repeat_after rule groups by it). */
export function targetKey(t: NotifyTarget): string {
  let key = keys.get(t);
  if (key === undefined) keys.set(t, (key = computeTargetKey(t)));
  return key;
}

/** A target's key is asked for each notification it causes: hashed once per target object. */
const keys = new WeakMap<NotifyTarget, string>();

function computeTargetKey(t: NotifyTarget): string {
  const canonical = JSON.stringify([
    t.webhook ?? null,
    t.format ?? null,
    t.email ?? null,
    [...t.on].sort(),
    t.repeatAfterMs,
  ]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/**
 * Where a target sends, for people and logs: a webhook's origin only (a
 * Slack-style URL carries its secret in the path), or the addresses.
 */
export function targetLabel(t: NotifyTarget): string {
  if (t.webhook) {
    try {
      const u = new URL(t.webhook);
      return `webhook ${u.origin}${u.pathname.length > 1 || u.search ? '/…' : ''}`;
    } catch {
      return 'webhook';
    }
  }
  return `e-mail ${(t.email ?? []).join(', ')}`;
}
