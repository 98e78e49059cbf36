import { FAILURE_EVENTS, targetKey, type NotifyEvent, type NotifyTarget } from './targets';

/**
 * The no-storm rules (docs/notifications.md), pure so they are tested for
 * every sequence of outcomes (test/unit/notify-storm.test.ts):
 *   - a final failure (failed, timed_out, lost, missed) goes to a target
 *     that lists it when the target has not been told of this job's
 *     failures yet, or was told at least its repeat_after ago; otherwise
 *     it is held back and counted;
 *   - a failure that is retried is not final: only targets listing
 *     `retry` hear of it, as `retry`;
 *   - the first success after failures (or while overdue) sends
 *     `recovered` once and forgets the failures;
 *   - `overdue` is sent once when the job goes overdue (overdue.ts).
 */

export interface JobNotifyState {
  /** Epoch ms of the first failure of the current streak; null when not failing. */
  failingSince: number | null;
  /** Final failures since failingSince. */
  failures: number;
  /** Epoch ms when the job went overdue; null when not. */
  overdueSince: number | null;
  /** Per target key: when a failure was last sent there, and how many were held back since. */
  marks: Map<string, { lastAt: number; held: number }>;
}

export interface Outcome {
  /** A final run status (succeeded, failed, timed_out, lost, missed, skipped). */
  status: string;
  /** A retry was written for this run: the chain is not over. */
  retried: boolean;
  /** Epoch ms, the database clock. */
  at: number;
}

export interface Send {
  target: NotifyTarget;
  key: string;
  event: NotifyEvent;
  /** Final failures of the streak so far (for recovered: the streak that ended). */
  failures: number;
}

export function emptyState(): JobNotifyState {
  return { failingSince: null, failures: 0, overdueSince: null, marks: new Map() };
}

function isFailure(status: string): status is NotifyEvent {
  return (FAILURE_EVENTS as readonly string[]).includes(status);
}

/** Apply one outcome to `state` (changed in place); returns what to send. */
export function decide(
  state: JobNotifyState,
  outcome: Outcome,
  targets: readonly NotifyTarget[],
): Send[] {
  const sends: Send[] = [];
  if (outcome.status === 'succeeded') {
    if (state.failingSince !== null || state.overdueSince !== null) {
      for (const t of targets)
        if (t.on.includes('recovered'))
          sends.push({
            target: t,
            key: targetKey(t),
            event: 'recovered',
            failures: state.failures,
          });
    }
    state.failingSince = null;
    state.failures = 0;
    state.overdueSince = null;
    state.marks.clear();
    return sends;
  }
  if (!isFailure(outcome.status)) return sends;
  if (outcome.retried) {
    for (const t of targets)
      if (t.on.includes('retry'))
        sends.push({ target: t, key: targetKey(t), event: 'retry', failures: state.failures });
    return sends;
  }
  state.failingSince ??= outcome.at;
  state.failures += 1;
  for (const t of targets) {
    if (!t.on.includes(outcome.status)) continue;
    const key = targetKey(t);
    const mark = state.marks.get(key);
    if (mark === undefined || outcome.at - mark.lastAt >= t.repeatAfterMs) {
      sends.push({ target: t, key, event: outcome.status, failures: state.failures });
      state.marks.set(key, { lastAt: outcome.at, held: 0 });
    } else mark.held += 1;
  }
  return sends;
}

/** The job went overdue at `at` (once; overdue.ts only calls this for a job not overdue yet). */
export function decideOverdue(
  state: JobNotifyState,
  at: number,
  targets: readonly NotifyTarget[],
): Send[] {
  if (state.overdueSince !== null) return [];
  state.overdueSince = at;
  return targets
    .filter((t) => t.on.includes('overdue'))
    .map((t) => ({
      target: t,
      key: targetKey(t),
      event: 'overdue' as const,
      failures: state.failures,
    }));
}
