import { MessageFormatError } from '../errors';
import { cutChars, EARLIEST_TIME_MS, HOST_MAX_CHARS, REASON_MAX_CHARS } from '../message-fields';
import { RUN_ID_RE } from '../messages';

/**
 * The control messages (exchange `cronq.control`, docs/architecture.md):
 * small JSON bodies, each bounded and validated here before anything acts
 * on it. A body that fails is dropped by the consumer with a log line.
 *
 * - `kill`: the runner holding `run_id` ends its process group (SIGTERM,
 *   then CRONQ_KILL_GRACE_SECONDS, then SIGKILL); a runner that later gets
 *   a delivery of that run does not start it.
 * - `watch`: a web process asks the runner holding `run_id` to stream its
 *   live output until `until`.
 * - `wake`: *Run now* was asked; every injector claims at once instead of
 *   at its next poll.
 */

/** Largest control body taken: anything longer is not one of ours. */
export const CONTROL_MAX_BYTES = 4096;
/** The longest a single watch may ask for; a longer `until` is cut to this from now. */
export const WATCH_MAX_MS = 10 * 60 * 1000;
/** How far in the past or future a `requested_at` may lie (clock skew, a message that waited). */
const REQUESTED_AT_SKEW_MS = 24 * 3600 * 1000;

export interface KillMessage {
  type: 'kill';
  run_id: string;
  /** Who asked, in words: `api from <addr>`, `admin from <addr>`, `overlap replace`. */
  requested_by: string;
  /** ISO 8601 UTC. */
  requested_at: string;
  /** Why, when it is not a person's request (e.g. `replaced by <run id>`). */
  reason?: string;
}

export interface WatchMessage {
  type: 'watch';
  run_id: string;
  /** ISO 8601 UTC: stream until then (at most WATCH_MAX_MS from its receipt). */
  until: string;
}

export interface WakeMessage {
  type: 'wake';
  /** ISO 8601 UTC. */
  requested_at: string;
}

export type ControlMessage = KillMessage | WatchMessage | WakeMessage;

/** A kill as the runner uses it. */
export interface KillOrder {
  runId: string;
  requestedBy: string;
  requestedAt: Date;
  reason: string | undefined;
}

/** A watch as the runner uses it: `until` is epoch ms, never more than WATCH_MAX_MS after receipt. */
export interface WatchOrder {
  runId: string;
  until: number;
}

export type ControlOrder =
  | ({ type: 'kill' } & KillOrder)
  | ({ type: 'watch' } & WatchOrder)
  | { type: 'wake'; requestedAt: Date };

export function killMessage(o: KillOrder): KillMessage {
  const m: KillMessage = {
    type: 'kill',
    run_id: o.runId,
    requested_by: cutChars(o.requestedBy, HOST_MAX_CHARS),
    requested_at: o.requestedAt.toISOString(),
  };
  if (o.reason !== undefined) m.reason = cutChars(o.reason, REASON_MAX_CHARS);
  return m;
}

export function watchMessage(runId: string, until: Date): WatchMessage {
  return { type: 'watch', run_id: runId, until: until.toISOString() };
}

export function wakeMessage(at: Date): WakeMessage {
  return { type: 'wake', requested_at: at.toISOString() };
}

export function encodeControl(m: ControlMessage): Buffer {
  return Buffer.from(JSON.stringify(m), 'utf8');
}

/** Parse and bound a control body; throws MessageFormatError saying what is wrong. */
export function parseControlMessage(body: Buffer, now = Date.now()): ControlOrder {
  if (body.length > CONTROL_MAX_BYTES)
    throw new MessageFormatError(`control message over ${CONTROL_MAX_BYTES} bytes`);
  let m: unknown;
  try {
    m = JSON.parse(body.toString('utf8'));
  } catch {
    throw new MessageFormatError('control message is not JSON');
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m))
    throw new MessageFormatError('control message is not a JSON object');
  const o = m as Record<string, unknown>;
  switch (o.type) {
    case 'kill': {
      const requestedBy = o.requested_by;
      if (typeof requestedBy !== 'string' || requestedBy === '')
        throw new MessageFormatError('kill message has no requested_by');
      if (o.reason !== undefined && typeof o.reason !== 'string')
        throw new MessageFormatError('kill message reason must be a string');
      return {
        type: 'kill',
        runId: runIdField(o),
        requestedBy: cutChars(requestedBy, HOST_MAX_CHARS),
        requestedAt: new Date(timeField(o, 'requested_at', now, REQUESTED_AT_SKEW_MS)),
        reason: typeof o.reason === 'string' ? cutChars(o.reason, REASON_MAX_CHARS) : undefined,
      };
    }
    case 'watch': {
      const until = timeField(o, 'until', now, Number.MAX_SAFE_INTEGER);
      return { type: 'watch', runId: runIdField(o), until: Math.min(until, now + WATCH_MAX_MS) };
    }
    case 'wake':
      return {
        type: 'wake',
        requestedAt: new Date(timeField(o, 'requested_at', now, REQUESTED_AT_SKEW_MS)),
      };
    default:
      throw new MessageFormatError('control message type must be kill, watch or wake');
  }
}

function runIdField(o: Record<string, unknown>): string {
  const id = o.run_id;
  if (typeof id !== 'string' || !RUN_ID_RE.test(id))
    throw new MessageFormatError(`${String(o.type)} message run_id must be 32 lowercase hex`);
  return id;
}

/** An ISO 8601 time after 2000 and at most `aheadMs` past `now`; epoch ms. */
function timeField(o: Record<string, unknown>, name: string, now: number, aheadMs: number): number {
  const v = o[name];
  const t = typeof v === 'string' && v.length <= 40 ? Date.parse(v) : NaN;
  if (!Number.isFinite(t) || t < EARLIEST_TIME_MS || t > now + aheadMs)
    throw new MessageFormatError(`${String(o.type)} message ${name} must be an ISO 8601 time`);
  return t;
}
