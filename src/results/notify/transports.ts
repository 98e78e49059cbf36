import nodemailer from 'nodemailer';
import { signBody } from '../../core/notify/signature';
import { slackText, type Message } from './body';

/**
 * One attempt to deliver one notification, over HTTP or SMTP, within
 * ATTEMPT_TIMEOUT_MS. Returns the HTTP status or throws with a short
 * error; never logs or returns the secret, the SMTP URL or the webhook's
 * path (a Slack-style URL carries its secret there).
 */

export const ATTEMPT_TIMEOUT_MS = 10_000;

export interface Target {
  webhook?: string;
  format?: 'json' | 'slack';
  email?: string[];
}

export interface AttemptResult {
  ok: boolean;
  status: number | null;
  error: string | null;
}

export async function postWebhook(
  url: string,
  m: Message,
  format: 'json' | 'slack' | undefined,
  secret: string | undefined,
  deliveryId: number,
  timeoutMs = ATTEMPT_TIMEOUT_MS,
): Promise<AttemptResult> {
  const payload = format === 'slack' ? { text: slackText(m), ...m.body } : m.body;
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'cronq-notify',
    'x-cronq-delivery': String(deliveryId),
    'x-cronq-event': String(m.body.event),
  };
  if (secret) {
    const ts = Math.floor(Date.now() / 1000);
    headers['x-cronq-timestamp'] = String(ts);
    headers['x-cronq-signature'] = signBody(secret, ts, body);
  }
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers,
      body,
      // A redirect is an answer, not an invitation to post the body elsewhere.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    // The answer's body is not read beyond what it takes to free the connection.
    await res.body?.cancel().catch(() => undefined);
    const ok = res.status >= 200 && res.status < 300;
    return { ok, status: res.status, error: ok ? null : `HTTP ${res.status}` };
  } catch (err) {
    return { ok: false, status: null, error: fetchError(err, timeoutMs) };
  }
}

function fetchError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; cause?: { code?: string; message?: string }; message?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError')
    return `no answer within ${timeoutMs / 1000} s`;
  return (e?.cause?.code ?? e?.cause?.message ?? e?.message ?? 'request failed').slice(0, 200);
}

export interface Mailer {
  send(to: string[], m: Message): Promise<AttemptResult>;
  close(): void;
}

export function createMailer(
  smtpUrl: string,
  from: string,
  timeoutMs = ATTEMPT_TIMEOUT_MS,
): Mailer {
  const transport = nodemailer.createTransport({
    url: smtpUrl,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  } as Parameters<typeof nodemailer.createTransport>[0]);
  return {
    async send(to, m) {
      try {
        await transport.sendMail({ from, to, subject: m.subject.slice(0, 200), text: m.text });
        return { ok: true, status: null, error: null };
      } catch (err) {
        const e = err as { responseCode?: number; code?: string; message?: string };
        return {
          ok: false,
          status: typeof e.responseCode === 'number' ? e.responseCode : null,
          // nodemailer's messages may quote the server's greeting, never the URL's password.
          error: (e.code ? `${e.code}: ` : '') + String(e.message ?? 'send failed').slice(0, 180),
        };
      }
    },
    close() {
      transport.close();
    },
  };
}
