import type { NotifyEvent } from '../../core/notify/targets';

/**
 * What a notification says (docs/notifications.md), built when it is sent
 * from its row and its run's row: the webhook's JSON body and the e-mail's
 * plain text carry the same facts and links.
 */

/** The output a notification carries: its last 4 KiB. */
export const OUTPUT_BYTES = 4096;

export interface NotificationRow {
  id: number;
  job_id: number;
  job_name: string | null;
  category: string | null;
  run_id: string | null;
  event: NotifyEvent;
  failures: number;
  target: string;
  attempts: number;
  created_at: Date;
}

export interface RunFacts {
  run_id: string;
  status: string;
  reason: string | null;
  return_code: number | null;
  scheduled_for: Date | null;
  started_at: Date | null;
  finished_at: Date | null;
  host: string | null;
  attempt: number;
  output_tail: string | null;
}

export interface JobFacts {
  failing_since: Date | null;
  alert_after_ms: number | null;
  alert_base_at: Date | null;
}

/** The last `bytes` of `s` as UTF-8, never cutting a character in two. */
export function tailBytes(s: string, bytes: number): string {
  const buf = Buffer.from(s, 'utf8');
  if (buf.length <= bytes) return s;
  let start = buf.length - bytes;
  // Skip continuation bytes (10xxxxxx) so the tail starts at a character.
  while (start < buf.length && (buf[start]! & 0xc0) === 0x80) start += 1;
  return buf.subarray(start).toString('utf8');
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

const HEADLINES: Record<NotifyEvent, string> = {
  failed: 'failed',
  timed_out: 'timed out',
  lost: 'was lost (its runner went silent)',
  missed: 'missed its start',
  overdue: 'is overdue',
  recovered: 'recovered',
  retry: 'failed and will be retried',
};

export interface Message {
  subject: string;
  body: Record<string, unknown>;
  text: string;
}

export function buildMessage(
  n: NotificationRow,
  run: RunFacts | undefined,
  job: JobFacts | undefined,
  publicUrl: string | undefined,
): Message {
  const name = n.job_name ?? `job ${n.job_id}`;
  const jobUrl = publicUrl ? `${publicUrl}/job/${n.job_id}` : null;
  const runUrl = publicUrl && n.run_id ? `${publicUrl}/run/${n.run_id}` : null;
  const output = run?.output_tail ? tailBytes(run.output_tail, OUTPUT_BYTES) : null;
  let headline = `CronQ: ${n.category ? `${n.category}/` : ''}${name} ${HEADLINES[n.event] ?? n.event}`;
  if (n.failures > 1 && n.event !== 'recovered') headline += ` (${n.failures} failures in a row)`;
  if (n.event === 'recovered' && n.failures > 0)
    headline += ` after ${n.failures} failure${n.failures === 1 ? '' : 's'}`;
  const body: Record<string, unknown> = {
    event: n.event,
    notification_id: n.id,
    failures: n.failures,
    failing_since: iso(job?.failing_since),
    job: { id: n.job_id, category: n.category, name: n.job_name, url: jobUrl },
    run: run
      ? {
          id: run.run_id,
          status: run.status,
          reason: run.reason,
          return_code: run.return_code,
          scheduled_for: iso(run.scheduled_for),
          started_at: iso(run.started_at),
          finished_at: iso(run.finished_at),
          host: run.host,
          attempt: run.attempt,
          url: runUrl,
        }
      : null,
    output_tail: output,
  };
  if (n.event === 'overdue')
    body.overdue = {
      alert_after_seconds: job?.alert_after_ms != null ? Number(job.alert_after_ms) / 1000 : null,
      last_success_or_since: iso(job?.alert_base_at),
    };
  const lines = [headline, ''];
  lines.push(`Job: ${name} (id ${n.job_id}${n.category ? `, category ${n.category}` : ''})`);
  if (run) {
    lines.push(`Run: ${run.run_id}, status ${run.status}, attempt ${run.attempt}`);
    if (run.return_code !== null) lines.push(`Return code: ${run.return_code}`);
    if (run.reason) lines.push(`Reason: ${run.reason}`);
    if (run.host) lines.push(`Host: ${run.host}`);
    lines.push(`Scheduled for: ${iso(run.scheduled_for) ?? '—'}`);
    lines.push(`Started: ${iso(run.started_at) ?? '—'}   Finished: ${iso(run.finished_at) ?? '—'}`);
  }
  if (n.event === 'overdue' && job)
    lines.push(
      `No successful run since ${iso(job.alert_base_at) ?? '—'} (alert_after ${Number(job.alert_after_ms ?? 0) / 1000} s)`,
    );
  if (n.failures > 1 && job?.failing_since)
    lines.push(`Failing since ${iso(job.failing_since)}: ${n.failures} failures`);
  if (runUrl) lines.push(`Run page: ${runUrl}`);
  if (jobUrl) lines.push(`Job page: ${jobUrl}`);
  if (output) lines.push('', `Last output (at most ${OUTPUT_BYTES} bytes):`, output);
  return { subject: headline, body, text: lines.join('\n') };
}

/** A Slack-compatible `text`: the headline and the links, in Slack's own link form. */
export function slackText(m: Message): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const b = m.body as { job: { url: string | null }; run: { url: string | null } | null };
  const links = [
    b.run?.url ? `<${b.run.url}|run>` : null,
    b.job.url ? `<${b.job.url}|job>` : null,
  ].filter(Boolean);
  return `${esc(m.subject)}${links.length > 0 ? ` — ${links.join(' · ')}` : ''}`;
}
