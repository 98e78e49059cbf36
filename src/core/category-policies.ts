import { POLICY_FIELDS, parseJobPolicies } from './policies';
import type { Problem } from './category';

/**
 * The policy fields of a category file's job (docs/policies.md): their
 * JSON Schema, for editors and other tools, and the check the validator,
 * the dry run and the PUT share. The rules themselves live once, in
 * core/policies (parseJobPolicies); the schema only describes the shapes
 * and is never stricter than those rules, so its messages are replaced by
 * theirs.
 */

const DURATION = {
  type: ['string', 'null'],
  minLength: 1,
  maxLength: 40,
  description: 'ISO 8601 duration in weeks, days, hours, minutes and seconds, e.g. "PT30S", "P1D".',
} as const;

export const POLICY_SCHEMA_PROPERTIES = {
  overlap: {
    type: ['string', 'null'],
    enum: ['allow', 'forbid', 'replace', null],
    description:
      'allow (default): runs may overlap. forbid: an occurrence due while a run is not final is recorded "skipped". replace: a new occurrence kills the run still going (recorded "killed", "replaced by <run id>") and starts.',
  },
  catch_up: {
    type: ['string', 'null'],
    enum: ['once', 'skip', 'all', null],
    description:
      'Occurrences missed during an outage or a pause: once (default) runs one, skip runs none, all runs each up to catch_up_limit.',
  },
  catch_up_limit: {
    type: ['integer', 'null'],
    minimum: 1,
    maximum: 1000,
    description: 'The most runs catch_up "all" starts for one outage; default 10.',
  },
  starting_deadline: {
    ...DURATION,
    description:
      'A run that cannot start within this long of its occurrence is recorded "missed"; default none. ISO 8601 duration (weeks, days, hours, minutes, seconds).',
  },
  retries: {
    type: ['object', 'null'],
    required: ['max'],
    additionalProperties: false,
    description:
      'Run again after a failure: max retries, delay before the first, backoff factor, max_delay, on which outcomes.',
    properties: {
      max: { type: 'integer', minimum: 0, maximum: 100 },
      delay: { ...DURATION, description: 'Before the first retry; default "PT30S".' },
      backoff: { type: ['number', 'null'], minimum: 1, maximum: 10, description: 'Default 2.' },
      max_delay: { ...DURATION, description: 'The longest delay; default "PT15M".' },
      on: {
        type: ['array', 'null'],
        minItems: 1,
        maxItems: 3,
        items: { enum: ['failed', 'timed_out', 'lost'] },
        description: 'Default ["failed", "timed_out"].',
      },
    },
  },
  alert_after: {
    ...DURATION,
    description:
      'The dead-man\'s switch: no successful run for this long makes the job "overdue" and notifies (docs/notifications.md); default none.',
  },
  enabled: {
    type: ['boolean', 'null'],
    description: 'false: the job is kept but its occurrences are not claimed; default true.',
  },
} as const;

const FIELDS: ReadonlySet<string> = new Set(POLICY_FIELDS);

/** Whether a problem path (`jobs[2].retries.max`) is inside a policy field of a job. */
export function isPolicyPath(path: string): boolean {
  const m = /^jobs\[\d+\]\.([a-z_]+)/.exec(path);
  return m !== null && FIELDS.has(m[1]!);
}

/**
 * The problems of one job's policy fields, each at the field's path and
 * naming the job, in parseJobPolicies's words (`jobs[2].overlap: must be
 * "allow", "forbid" or "replace" (job "backup")`).
 */
export function jobPolicyProblems(job: unknown, index: number): Problem[] {
  if (typeof job !== 'object' || job === null || Array.isArray(job)) return [];
  const j = job as Record<string, unknown>;
  const { errors } = parseJobPolicies(j);
  const named = typeof j.name === 'string' ? ` (job "${j.name.slice(0, 80)}")` : '';
  return errors.map((e) => {
    // Each error begins with its field ("retries.max must ...", "starting_deadline: ...").
    const m = /^([a-z_]+(?:\.[a-z_]+)?)(?::\s*|\s+)(.*)$/s.exec(e);
    const field = m && FIELDS.has(m[1]!.split('.')[0]!) ? m[1]! : null;
    return field
      ? { path: `jobs[${index}].${field}`, message: `${m![2]}${named}` }
      : { path: `jobs[${index}]`, message: `${e}${named}` };
  });
}

/** The policy fields as written (without `enabled`), in a stable order; null when there are none. */
export function writtenPolicies(job: Record<string, unknown>): Record<string, unknown> | null {
  const out: Record<string, unknown> = {};
  for (const f of POLICY_FIELDS)
    if (f !== 'enabled' && job[f] !== undefined && job[f] !== null) out[f] = job[f];
  return Object.keys(out).length > 0 ? out : null;
}

/** The fields of a stored jobs.policies (the file's words); {} for NULL or text that cannot be read. */
export function storedPolicyFields(text: string | null | undefined): Record<string, unknown> {
  if (!text) return {};
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/** JSON with object keys sorted, so two spellings of the same fields compare equal. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object' && v !== null)
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}
