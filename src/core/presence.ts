import type { Channel } from 'amqplib';
import { EXCHANGE } from './topology';

/**
 * Runner presence: every runner process announces itself every
 * PRESENCE_PERIOD_MS (routing key `cronq_presence` on the `cronq`
 * exchange: host, queue, concurrency, jobs running now, version), whether
 * or not it runs anything, so /system can show each runner and one that
 * has gone silent. Each results consumer writes them into the `runners`
 * table. Its queue is bounded both ways: a message older than a minute is
 * worth nothing and expires, and at most 10,000 wait (the oldest dropped);
 * with no results consumer there is no queue and nothing is kept.
 */

export const PRESENCE_ROUTING_KEY = 'cronq_presence';
export const PRESENCE_PERIOD_MS = 10_000;
/** A runner not heard from for this many periods is shown silent. */
export const SILENT_AFTER_PERIODS = 3;

/**
 * Each results consumer reads the announcements on a queue of its own:
 * exclusive and server-named, so it lives on the node the consumer is
 * connected to and goes with its connection. A shared durable classic
 * queue would live on one node of a cluster, and while that node is down
 * its declaration fails, which would fail the results consumer's whole
 * connection (and so the storing of results) for a display. Returns the
 * queue's name.
 */
export async function declarePresenceQueue(ch: Channel): Promise<string> {
  await ch.assertExchange(EXCHANGE, 'direct', { durable: true });
  const q = await ch.assertQueue('', {
    exclusive: true,
    durable: false,
    arguments: {
      'x-message-ttl': 60_000,
      'x-max-length': 10_000,
      'x-overflow': 'drop-head',
    },
  });
  await ch.bindQueue(q.queue, EXCHANGE, PRESENCE_ROUTING_KEY);
  return q.queue;
}

export interface RunnerPresence {
  /** `host.pid`: one runner process. */
  instance: string;
  host: string;
  pid: number;
  queue: string;
  concurrency: number;
  running: number;
  version: string;
  /** When the process started, ISO 8601. */
  started_at: string;
  /** Its announcement period, ms. */
  period_ms: number;
}

const MAX_BYTES = 4096;
const TEXT = /^[\x21-\x7e]{1,255}$/;

function text(v: unknown, max = 255): string | undefined {
  return typeof v === 'string' && v.length <= max && TEXT.test(v) ? v : undefined;
}

function count(v: unknown, max: number): number | undefined {
  return Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max
    ? (v as number)
    : undefined;
}

/** An ISO time the database can store (years 2000-9999), or undefined. */
function storableTime(v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length > 40) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  const year = new Date(t).getUTCFullYear();
  return year >= 2000 && year <= 9999 ? v : undefined;
}

/** A presence message, or the reason it is refused (bounded: it only feeds a display). */
export function parsePresence(body: Buffer): RunnerPresence | { error: string } {
  if (body.length > MAX_BYTES) return { error: `larger than ${MAX_BYTES} bytes` };
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return { error: 'not JSON' };
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return { error: 'not an object' };
  const d = doc as Record<string, unknown>;
  const p = {
    instance: text(d.instance),
    host: text(d.host),
    pid: count(d.pid, 2 ** 31 - 1),
    queue: text(d.queue),
    concurrency: count(d.concurrency, 1_000_000),
    running: count(d.running, 1_000_000),
    version: text(d.version, 64),
    started_at: storableTime(d.started_at),
    period_ms: count(d.period_ms, 3_600_000),
  };
  const missing = Object.entries(p).find(([, v]) => v === undefined);
  if (missing) return { error: `${missing[0]} missing or out of bounds` };
  return p as RunnerPresence;
}
