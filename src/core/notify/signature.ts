import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures (docs/notifications.md). With CRONQ_WEBHOOK_SECRET
 * set, every POST carries
 *   X-CronQ-Timestamp: <unix seconds>
 *   X-CronQ-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
 * so a receiver can check both the body and its age (and refuse replays
 * older than a few minutes).
 */

export const TIMESTAMP_HEADER = 'x-cronq-timestamp';
export const SIGNATURE_HEADER = 'x-cronq-signature';

export function signBody(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * What a receiver does: true when `signature` is the body's, made with
 * `secret`, and `timestamp` is within `toleranceS` of `nowS`.
 */
export function verifyBody(
  secret: string,
  timestamp: string,
  body: string,
  signature: string,
  nowS: number,
  toleranceS = 300,
): boolean {
  if (!/^\d{1,12}$/.test(timestamp)) return false;
  const ts = Number(timestamp);
  if (Math.abs(nowS - ts) > toleranceS) return false;
  const want = Buffer.from(signBody(secret, ts, body));
  const got = Buffer.from(signature);
  return want.length === got.length && timingSafeEqual(want, got);
}
