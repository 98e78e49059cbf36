import { durationWords } from './duration';
import type { JobPolicies } from './policies';
import { retryDelayCeilingMs } from './retry';

/** Each effective policy in words, defaults included, for the job page and the API. */
export function describePolicies(p: JobPolicies): {
  overlap: string;
  catchUp: string;
  startingDeadline: string;
  retries: string;
  enabled: string;
} {
  return {
    overlap:
      p.overlap === 'forbid'
        ? 'skips an occurrence while a run is going'
        : p.overlap === 'replace'
          ? 'kills the run still going when the next occurrence starts'
          : 'starts every occurrence, even while a run is going',
    catchUp:
      p.catchUp === 'skip'
        ? 'after an outage or a pause, runs none of the missed occurrences'
        : p.catchUp === 'all'
          ? `after an outage or a pause, runs each missed occurrence, oldest first, up to ${p.catchUpLimit}`
          : 'after an outage or a pause, runs the missed occurrences once',
    startingDeadline:
      p.startingDeadlineMs === null
        ? 'starts however late'
        : `not started if more than ${durationWords(p.startingDeadlineMs)} late`,
    retries: describeRetries(p),
    enabled: p.enabled ? 'enabled' : 'disabled by its category file',
  };
}

function describeRetries(p: JobPolicies): string {
  const r = p.retries;
  if (!r || r.max === 0) return 'never retried';
  const times = r.max === 1 ? 'once' : r.max === 2 ? 'twice' : `${r.max} times`;
  const waits: string[] = [];
  for (let i = 1; i <= Math.min(r.max, 3); i++)
    waits.push(durationWords(retryDelayCeilingMs(r, i)));
  const then = waits.join(' then ') + (r.max > 3 ? ' …' : '');
  return `retries ${times} when ${r.on.join(' or ').replaceAll('_', ' ')}, ${then}`;
}
