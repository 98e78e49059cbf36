import { fail, intSetting, type Env } from '../config-values';
import { DurationError, parsePolicyDuration } from '../policies/duration';
import {
  MIN_REPEAT_AFTER_MS,
  NOTIFY_EVENTS,
  addressProblem,
  parseNotifyTargets,
  webhookUrlProblem,
  type NotifyTarget,
} from './targets';

/** The notification settings (docs/notifications.md), read by core/config.ts. */
export interface NotifyConfig {
  /** CRONQ_NOTIFY_WEBHOOK / CRONQ_NOTIFY_EMAIL: targets for every job, besides each category's. */
  targets: readonly NotifyTarget[];
  /** CRONQ_PUBLIC_URL: the admin's address in links; none = no links. */
  publicUrl: string | undefined;
  /** CRONQ_WEBHOOK_SECRET: signs webhook bodies. Secret. */
  webhookSecret: string | undefined;
  /** CRONQ_SMTP_URL (smtp:// or smtps://, may hold a password). Secret. */
  smtpUrl: string | undefined;
  mailFrom: string;
  /** Notifications one consumer sends at once; 0 = this consumer does not send (others do). */
  concurrency: number;
  /** How often the sender looks for notifications due. */
  pollMs: number;
  /** The first retry's delay; each next one doubles, up to an hour. */
  retryBaseMs: number;
  /** How often the overdue check runs. */
  overdueCheckMs: number;
}

function list(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function notifyFromEnv(e: Env): NotifyConfig {
  const on = list(e.CRONQ_NOTIFY_ON);
  for (const ev of on)
    if (!(NOTIFY_EVENTS as readonly string[]).includes(ev))
      fail(
        'CRONQ_NOTIFY_ON',
        e.CRONQ_NOTIFY_ON ?? '',
        `comma-separated events: ${NOTIFY_EVENTS.join(', ')}`,
      );
  const repeat = e.CRONQ_NOTIFY_REPEAT_AFTER?.trim() || undefined;
  if (repeat !== undefined) {
    try {
      if (parsePolicyDuration(repeat, 'CRONQ_NOTIFY_REPEAT_AFTER') < MIN_REPEAT_AFTER_MS)
        throw new DurationError('short');
    } catch {
      fail('CRONQ_NOTIFY_REPEAT_AFTER', repeat, 'an ISO 8601 duration of at least PT1M, e.g. PT1H');
    }
  }
  const common = { ...(on.length > 0 ? { on } : {}), ...(repeat ? { repeat_after: repeat } : {}) };
  const raw: unknown[] = [];
  const webhook = e.CRONQ_NOTIFY_WEBHOOK?.trim() || undefined;
  if (webhook !== undefined) {
    if (webhookUrlProblem(webhook) !== null)
      fail('CRONQ_NOTIFY_WEBHOOK', '***', 'an http:// or https:// URL without a user or password');
    const format = e.CRONQ_NOTIFY_WEBHOOK_FORMAT?.trim() || 'json';
    if (format !== 'json' && format !== 'slack')
      fail('CRONQ_NOTIFY_WEBHOOK_FORMAT', format, 'json or slack');
    raw.push({ ...common, webhook, format });
  }
  const email = list(e.CRONQ_NOTIFY_EMAIL);
  if (email.length > 0) {
    if (email.length > 10 || email.some((a) => addressProblem(a) !== null))
      fail(
        'CRONQ_NOTIFY_EMAIL',
        e.CRONQ_NOTIFY_EMAIL ?? '',
        'up to 10 comma-separated e-mail addresses',
      );
    raw.push({ ...common, email });
  }
  const { targets } = parseNotifyTargets(raw);

  const publicUrl = e.CRONQ_PUBLIC_URL?.trim().replace(/\/+$/, '') || undefined;
  if (publicUrl !== undefined && webhookUrlProblem(publicUrl) !== null)
    fail('CRONQ_PUBLIC_URL', publicUrl, 'the http(s):// address people open the admin at');
  const secret = e.CRONQ_WEBHOOK_SECRET || undefined;
  if (secret !== undefined && secret.length < 16)
    fail('CRONQ_WEBHOOK_SECRET', '***', 'a secret of at least 16 characters');
  const smtpUrl = e.CRONQ_SMTP_URL?.trim() || undefined;
  if (smtpUrl !== undefined && !/^smtps?:\/\/[^\s]+$/.test(smtpUrl))
    fail('CRONQ_SMTP_URL', '***', 'smtp://[user:password@]host[:port] or smtps://…');
  if (email.length > 0 && smtpUrl === undefined)
    fail('CRONQ_NOTIFY_EMAIL', email.join(','), 'addresses together with CRONQ_SMTP_URL');
  const mailFrom = e.CRONQ_MAIL_FROM?.trim() || 'cronq@localhost';
  if (addressProblem(mailFrom) !== null)
    fail('CRONQ_MAIL_FROM', mailFrom, 'an e-mail address such as cronq@example.com');
  return {
    targets,
    publicUrl,
    webhookSecret: secret,
    smtpUrl,
    mailFrom,
    concurrency: intSetting(e, 'CRONQ_NOTIFY_CONCURRENCY', 8, 0, 256),
    pollMs: intSetting(e, 'CRONQ_NOTIFY_POLL_MS', 1000, 50, 600_000),
    retryBaseMs: intSetting(e, 'CRONQ_NOTIFY_RETRY_BASE_MS', 30_000, 10, 600_000),
    overdueCheckMs: intSetting(e, 'CRONQ_OVERDUE_CHECK_MS', 15_000, 100, 600_000),
  };
}
