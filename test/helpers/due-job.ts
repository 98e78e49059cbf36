import type { DueJobRow } from '../../src/injector/plan';

/** The instant the claim fixtures start at, and times after it. */
export const T0 = new Date('2024-03-01T12:00:00.000Z');
export const at = (ms: number): Date => new Date(T0.getTime() + ms);

let n = 0;
/** Run ids in order, for planClaim's makeRunId. */
export const ids = (): string => `run${String(++n).padStart(29, '0')}`;

/** A due job row as the claim reads it (a PT1S schedule due at T0), with `policies` as its file wrote them. */
export function dueJob(
  over: Partial<DueJobRow>,
  policies: Record<string, unknown> = {},
): DueJobRow {
  return {
    id: 7,
    name: 'nightly',
    command: 'echo hi',
    routing_key: 'default',
    schedule: `R/${T0.toISOString()}/PT1S`,
    interval: null,
    next_run: T0,
    run_now: 0,
    timeout: null,
    ended_at: null,
    schedule_error: null,
    policies: Object.keys(policies).length > 0 ? JSON.stringify(policies) : null,
    enabled: 1,
    paused_at: null,
    active_run_id: null,
    active_status: null,
    ...over,
  };
}
