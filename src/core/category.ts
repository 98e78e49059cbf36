import Ajv, { type ErrorObject } from 'ajv';
import { ValidationError } from './errors';
import { isValidSchedule } from './schedule';
import {
  DEFAULT_JOB_QUEUE,
  RESULTS_DEAD_QUEUE,
  RESULTS_QUEUE,
  RESULTS_ROUTING_KEY,
} from './topology';
import { duplicateNameProblems, sameName } from './category-names';
import { fieldBytesProblem, nameProblem } from './category-text';
import {
  POLICY_SCHEMA_PROPERTIES,
  isPolicyPath,
  jobPolicyProblems,
  writtenPolicies,
} from './category-policies';
import { NOTIFY_SCHEMA, parseNotifyTargets } from './notify/targets';

/**
 * The one schema of a category definition, shared by `cronq-validator`,
 * `cronq apply` and `PUT /api/category/<name>`. `schema/category.schema.json`
 * in the package is this object, written out (a test keeps them equal).
 */
export const CATEGORY_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://cronq.dev/schema/category.schema.json',
  title: 'CronQ category',
  description: 'A category of jobs, replaced as a whole by PUT /api/category/<name>.',
  type: 'object',
  required: ['jobs'],
  additionalProperties: false,
  properties: {
    category: {
      type: 'string',
      minLength: 1,
      maxLength: 255,
      description: 'The category name; must match the URL when both are given.',
    },
    notify: NOTIFY_SCHEMA,
    jobs: {
      type: 'array',
      maxItems: 10000,
      items: {
        type: 'object',
        required: ['name', 'schedule', 'command'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 255, pattern: '\\S' },
          schedule: {
            type: 'string',
            minLength: 1,
            maxLength: 255,
            description:
              'ISO 8601 repeating interval (R/2024-01-01T00:00:00Z/PT1M) or a cron expression, optionally with TZ=<IANA zone>.',
          },
          command: { type: 'string', minLength: 1, maxLength: 65535, pattern: '\\S' },
          routing_key: {
            type: 'string',
            pattern: '^[A-Za-z0-9._:-]{1,32}$',
            description: 'Routing key of the runner queue; default "default".',
          },
          timeout: {
            type: ['integer', 'null'],
            minimum: 1,
            maximum: 31536000,
            description: 'Seconds before the runner kills the job; null or absent = no limit.',
          },
          description: { type: ['string', 'null'], maxLength: 10000 },
          ...POLICY_SCHEMA_PROPERTIES,
        },
      },
    },
  },
} as const;

export interface JobDefinition {
  name: string;
  schedule: string;
  command: string;
  routing_key: string;
  timeout: number | null;
  description: string | null;
  /** The policy fields as the file wrote them, without `enabled` (stored as jobs.policies); null: none. */
  policies: Record<string, unknown> | null;
  /** jobs.enabled: the file's `enabled`, true when absent. */
  enabled: boolean;
}

export interface CategoryDefinition {
  category: string | undefined;
  jobs: JobDefinition[];
  /** The `notify` targets as written (stored as categories.notify); null: none. */
  notify: unknown[] | null;
}

/** The problems of a category's `notify` field, at `notify[i].field` (docs/notifications.md). */
function notifyProblems(doc: unknown): Problem[] {
  if (typeof doc !== 'object' || doc === null) return [];
  const { errors } = parseNotifyTargets((doc as { notify?: unknown }).notify);
  return errors.map((e) => {
    const m = /^(\[\d+\](?:\.[a-z_]+)?):\s*(.*)$/s.exec(e);
    return m ? { path: `notify${m[1]}`, message: m[2]! } : { path: 'notify', message: e };
  });
}

export interface Problem {
  /** Where, as `jobs[2].schedule`; `` for the whole document. */
  path: string;
  message: string;
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validateShape = ajv.compile(CATEGORY_SCHEMA);

function pathOf(e: ErrorObject): string {
  let p = e.instancePath
    .split('/')
    .slice(1)
    .map((seg) => (/^\d+$/.test(seg) ? `[${seg}]` : `.${seg}`))
    .join('')
    .replace(/^\./, '');
  if (e.keyword === 'required' || e.keyword === 'additionalProperties') {
    const prop =
      (e.params as { missingProperty?: string; additionalProperty?: string }).missingProperty ??
      (e.params as { additionalProperty?: string }).additionalProperty;
    if (prop) p = p ? `${p}.${prop}` : prop;
  }
  return p;
}

function messageOf(e: ErrorObject): string {
  switch (e.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a known field';
    case 'pattern':
      if (e.instancePath.endsWith('/routing_key')) return 'must be 1-32 letters, digits or . _ - :';
      return 'must not be blank';
    default:
      return e.message ?? 'is not valid';
  }
}

/**
 * Check a parsed category document: the schema, then what a schema cannot
 * say (schedules that parse, names unique within the category by the one
 * rule of category-names.ts, the name in the URL equal to the one in the body). Returns every problem found.
 */
export function categoryProblems(doc: unknown, urlName?: string): Problem[] {
  // Policy fields are checked by core/policies, whose messages name the job and
  // the field; the schema's own words for them are left out.
  const jobs = (doc as { jobs?: unknown } | null)?.jobs;
  const policyProblems = [
    ...notifyProblems(doc),
    ...(Array.isArray(jobs) ? jobs.flatMap(jobPolicyProblems) : []),
  ];
  if (!validateShape(doc)) {
    const seen = new Set<string>();
    const problems: Problem[] = [];
    for (const e of validateShape.errors ?? []) {
      const pr = { path: pathOf(e), message: messageOf(e) };
      const key = `${pr.path}:${pr.message}`;
      if (!seen.has(key) && !isPolicyPath(pr.path) && !/^notify\b/.test(pr.path)) {
        seen.add(key);
        problems.push(pr);
      }
    }
    if (problems.length > 0) return [...problems, ...policyProblems];
  }
  const d = doc as {
    category?: string;
    jobs: Array<{
      name: string;
      schedule: string;
      command: string;
      routing_key?: string;
      description?: string | null;
    }>;
  };
  const problems: Problem[] = [];
  for (const [path, value] of [
    ['category', d.category],
    ...(urlName !== undefined ? [['category (in the URL)', urlName] as const] : []),
  ] as const) {
    const p = value === undefined ? null : nameProblem(value);
    if (p !== null) problems.push({ path, message: p });
  }
  if (urlName !== undefined && d.category !== undefined && !sameName(d.category, urlName)) {
    problems.push({
      path: 'category',
      message: `is "${d.category}" but the URL names "${urlName}"`,
    });
  }
  d.jobs.forEach((job, i) => {
    const badName = nameProblem(job.name);
    if (badName !== null) problems.push({ path: `jobs[${i}].name`, message: badName });
    for (const field of ['command', 'schedule', 'description'] as const) {
      const p = fieldBytesProblem(field, job[field]);
      if (p !== null) problems.push({ path: `jobs[${i}].${field}`, message: p });
    }
    const reserved = reservedRoutingKeyProblem(job.routing_key);
    if (reserved !== null) problems.push({ path: `jobs[${i}].routing_key`, message: reserved });
    const scheduleError = isValidSchedule(job.schedule);
    if (scheduleError !== null)
      problems.push({ path: `jobs[${i}].schedule`, message: scheduleError });
  });
  problems.push(...duplicateNameProblems(d.jobs));
  problems.push(...policyProblems);
  return problems;
}

/**
 * Routing keys that would put a job message into one of CronQ's own queues
 * (the results queue, its dead-letter queue) or that name CronQ's queues
 * rather than a runner's. Compared without case, and every key
 * beginning with "cronq_results" is kept for CronQ.
 */
const RESERVED_ROUTING_KEYS = new Set(
  [RESULTS_QUEUE, RESULTS_ROUTING_KEY, RESULTS_DEAD_QUEUE, DEFAULT_JOB_QUEUE].map((k) =>
    k.toLowerCase(),
  ),
);

export function reservedRoutingKeyProblem(key: string | undefined): string | null {
  if (key === undefined) return null;
  const k = key.toLowerCase();
  if (RESERVED_ROUTING_KEYS.has(k) || k.startsWith(RESULTS_QUEUE))
    return `"${key}" is reserved for CronQ's own queues; use the name of a runner queue (CRONQ_QUEUE) or "default"`;
  return null;
}

/** Most problems one refusal lists (a file of 10,000 bad jobs is refused with these and a count of the rest). */
export const MAX_LISTED_PROBLEMS = 100;

function listedProblems(problems: Problem[]): Problem[] {
  if (problems.length <= MAX_LISTED_PROBLEMS) return problems;
  return [
    ...problems.slice(0, MAX_LISTED_PROBLEMS),
    {
      path: '',
      message: `and ${problems.length - MAX_LISTED_PROBLEMS} more problems not listed (cronq-validator lists them all)`,
    },
  ];
}

/**
 * Validate and normalise; throws ValidationError listing the problems (the
 * first MAX_LISTED_PROBLEMS, then how many more).
 */
export function parseCategory(doc: unknown, urlName?: string): CategoryDefinition {
  const problems = categoryProblems(doc, urlName);
  if (problems.length > 0) {
    const first = problems[0]!;
    throw new ValidationError(
      `${first.path ? `${first.path}: ` : ''}${first.message}`,
      listedProblems(problems),
    );
  }
  const d = doc as {
    category?: string;
    notify?: unknown[] | null;
    jobs: Array<Partial<JobDefinition> & { name: string; schedule: string; command: string }>;
  };
  return {
    category: d.category,
    notify: Array.isArray(d.notify) && d.notify.length > 0 ? d.notify : null,
    jobs: d.jobs.map((j) => ({
      name: j.name,
      schedule: j.schedule.trim(),
      command: j.command,
      routing_key: j.routing_key ?? 'default',
      timeout: j.timeout ?? null,
      description: j.description ?? null,
      policies: writtenPolicies(j as Record<string, unknown>),
      enabled: (j as { enabled?: boolean | null }).enabled ?? true,
    })),
  };
}
