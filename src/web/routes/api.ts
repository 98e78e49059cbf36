import express, { Router } from 'express';
import { parseCategory } from '../../core/category';
import { storedPolicyFields } from '../../core/category-policies';
import { scheduleTextOf } from '../../core/jobs';
import { NotFoundError, ValidationError } from '../../core/errors';
import { applyCategory, planCategory, type CategoryPlan } from '../category-store';
import { POLICY_FIELDS } from '../../core/policies';
import { HttpError } from '../errors';
import { exactNames, intParam, ints, jobIdParam, values } from '../params';
import { jobJson, jobStatus, runJson } from '../present';
import * as q from '../queries';
import { queuedRetryAttempts } from '../run-queries';
import { attemptsOf } from '../present-policies';
import { apiKillRouter } from './api-kill';
import { wakeInjectors } from '../wake';
import { apiPauseRouter } from './api-pause';
import { apiRunsRouter } from './api-runs';
import type { WebDeps } from '../app';

/** Runs listed with each job in GET /api/jobs (newest first). */
export const API_RUNS_PER_JOB = 10;
/** Most runs listed in one GET /api/categories/<name> (fewer per job in a large category). */
export const MAX_RUNS_PER_CATEGORY = 2000;
/** Most distinct job ids and run ids one /api/live request may ask for. */
export const LIVE_MAX_JOBS = 200;
export const LIVE_MAX_RUNS = 10;

function sortParam(v: unknown): q.ApiJobQuery['sort'] {
  if (v === undefined || v === '') return { field: 'id', dir: 'asc' };
  const m = /^(id|name|category_id)(?:\.(asc|desc))?$/.exec(String(v));
  if (!m)
    throw new ValidationError('sort: expected <id|name|category_id>.<asc|desc>', [
      { path: 'sort', message: 'expected <id|name|category_id>.<asc|desc>' },
    ]);
  return { field: m[1] as q.JobSortField, dir: (m[2] ?? 'asc') as 'asc' | 'desc' };
}

/**
 * A PUT's answer: the original's added/changed/removed, plus `policy_changes`
 * (`{"backup": ["overlap", "retries"]}`) naming the policy fields each changed
 * job changes, only when there are some (so a file without policies answers
 * exactly as before).
 */
function planJson(p: CategoryPlan): Record<string, unknown> {
  // No prototype: a job may be called "__proto__".
  const policyChanges = Object.create(null) as Record<string, string[]>;
  for (const [name, fields] of Object.entries(p.changedFields)) {
    const policy = fields.filter((f) => (POLICY_FIELDS as readonly string[]).includes(f));
    if (policy.length > 0) policyChanges[name] = policy;
  }
  return {
    added: p.added,
    changed: p.changed,
    removed: p.removed,
    ...(Object.keys(policyChanges).length > 0 ? { policy_changes: policyChanges } : {}),
    // Only when it changes, so a file without notify answers exactly as before.
    ...(p.notifyChanged ? { notify_changed: true, notify: p.notify } : {}),
  };
}

export function apiRouter(deps: WebDeps): Router {
  const { db, config } = deps;
  const r = Router();
  const json = express.json({
    limit: config.web.bodyLimit,
    type: ['application/json', 'application/*+json'],
    strict: true,
  });

  r.get('/categories', async (req, res) => {
    const ids = ints('id', req.query.id);
    res.json({ data: { categories: await q.categories(db, ids) } });
  });

  r.get('/categories/:name', async (req, res) => {
    const cat = await q.categoryByName(db, String(req.params.name));
    if (!cat) throw new NotFoundError(`no category named "${req.params.name}"`);
    const jobs = await q.jobsOfCategory(db, cat.id);
    // A category may hold 10,000 jobs: its answer lists at most MAX_RUNS_PER_CATEGORY runs in all.
    const runs = await q.recentRunsBrief(
      db,
      jobs.map((j) => j.id),
      Math.min(API_RUNS_PER_JOB, Math.floor(MAX_RUNS_PER_CATEGORY / Math.max(1, jobs.length))),
    );
    const retries = await queuedRetryAttempts(
      db,
      [...runs.values()].map((list) => list[0]),
    );
    res.json({
      data: {
        category: {
          id: cat.id,
          name: cat.name,
          jobs: jobs.map((j) => jobJson(j, runs.get(j.id) ?? [], retries)),
          // The category as a PUT body, so GET -> edit -> PUT round-trips.
          definition: {
            category: cat.name,
            jobs: jobs.map((j) => ({
              name: j.name,
              schedule: scheduleTextOf(j),
              command: j.command,
              routing_key: j.routing_key ?? 'default',
              ...(j.timeout !== null ? { timeout: j.timeout } : {}),
              ...(j.description !== null ? { description: j.description } : {}),
              ...storedPolicyFields(j.policies),
              ...(j.enabled ? {} : { enabled: false }),
            })),
          },
        },
      },
    });
  });

  const putCategory: express.RequestHandler = async (req, res) => {
    const name = String(req.params.name);
    if (name === '' || [...name].length > 255)
      throw new ValidationError('category: the name in the URL must be 1-255 characters', [
        { path: 'category', message: 'must be 1-255 characters' },
      ]);
    if (req.body === undefined)
      throw new ValidationError('send the category as a JSON body', [
        { path: '', message: 'is required' },
      ]);
    // A misspelt dry run (`DRY_RUN=1`, `dryrun=1`) must not apply for real: a
    // parameter this request does not take is refused, before anything changes.
    const unknown = Object.keys(req.query).find((k) => k !== 'dry_run');
    if (unknown !== undefined)
      throw new ValidationError(
        `${unknown.slice(0, 40)}: not a parameter of PUT /api/category/<name> (only dry_run)`,
        [{ path: unknown.slice(0, 40), message: 'is not a parameter of this request' }],
      );
    const def = parseCategory(req.body, name);
    const dry = req.query.dry_run;
    if (dry !== undefined && dry !== '0' && dry !== 'false') {
      const p = await planCategory(db, name, def);
      res.json({ status: 'dry_run', ...planJson(p) });
      return;
    }
    const p = await applyCategory(db, name, def);
    deps.logger.info(
      {
        category: name,
        added: p.added.length,
        changed: p.changed.length,
        removed: p.removed.length,
      },
      'category replaced',
    );
    res.json({ status: 'success', ...planJson(p) });
  };
  r.put('/category/:name', json, putCategory);
  r.post('/category/:name', json, putCategory);

  r.get('/jobs', async (req, res) => {
    const query: q.ApiJobQuery = {
      page: intParam('page', req.query.page, 0, 0, 1_000_000),
      // More than 100 is served as 100 (SPEC: "at most 100"), not refused.
      perPage: Math.min(100, intParam('per_page', req.query.per_page, 10, 1, 1_000_000)),
      sort: sortParam(req.query.sort),
      ids: ints('id', req.query.id),
      categoryIds: ints('category.id', req.query['category.id']),
      categoryNames: values(req.query['category.name']),
      names: exactNames('name', req.query.name, 100),
    };
    const jobs = await q.apiJobs(db, query);
    const runs = await q.recentRunsBrief(
      db,
      jobs.map((j) => j.id),
      API_RUNS_PER_JOB,
    );
    const retries = await queuedRetryAttempts(
      db,
      [...runs.values()].map((list) => list[0]),
    );
    res.json({ data: { jobs: jobs.map((j) => jobJson(j, runs.get(j.id) ?? [], retries)) } });
  });

  r.get('/jobs/:id', async (req, res) => {
    const id = jobIdParam(req);
    const job = await q.jobById(db, id);
    if (!job) throw new NotFoundError(`no job with id ${id}`);
    const runs = (await q.recentRuns(db, [id], API_RUNS_PER_JOB)).get(id) ?? [];
    res.json({
      data: {
        job: jobJson(job, runs, new Map(runs[0] ? [[runs[0].run_id, runs[0].attempt]] : [])),
      },
    });
  });

  r.post('/jobs/:id/run', async (req, res) => {
    const id = jobIdParam(req);
    if (!(await q.requestRunNow(db, id))) throw new NotFoundError(`no job with id ${id}`);
    wakeInjectors(deps);
    deps.logger.info({ job_id: id }, 'run now requested (API)');
    res.json({ status: 'success', data: { job: { id, run_now: true } } });
  });

  // For the pages' refresh script: the status and recent runs of some jobs, and some runs.
  // Ids are de-duplicated and bounded, and a run's output is read cut (OUTPUT_SHOWN_CHARS),
  // so one refresh costs a few queries and a bounded amount of memory.
  r.get('/live', async (req, res) => {
    const jobIds = [...new Set(ints('job', req.query.job) ?? [])];
    const runIds = [...new Set((values(req.query.run) ?? []).map((s) => s.toLowerCase()))];
    if (jobIds.length > LIVE_MAX_JOBS || runIds.length > LIVE_MAX_RUNS)
      throw new ValidationError(
        `ask for at most ${LIVE_MAX_JOBS} jobs and ${LIVE_MAX_RUNS} runs at once`,
        [{ path: jobIds.length > LIVE_MAX_JOBS ? 'job' : 'run', message: 'too many ids' }],
      );
    const wanted = runIds.filter((s) => /^[0-9a-f]{32}$/.test(s));
    const perJob = intParam('runs', req.query.runs, 1, 1, 50);
    const jobs = jobIds.length
      ? await q.apiJobs(db, {
          ids: jobIds,
          page: 0,
          perPage: LIVE_MAX_JOBS,
          sort: { field: 'id', dir: 'asc' },
        })
      : [];
    // One job (its page) gets its runs whole: reasons and attempts of skipped, missed and retry runs.
    const runs: Map<number, Array<q.RunBrief | q.RunSummary>> = jobIds.length === 1
      ? await q.recentRuns(db, jobIds, perJob)
      : await q.recentRunsBrief(db, jobIds, perJob);
    const retries = await queuedRetryAttempts(
      db,
      [...runs.values()].map((list) => list[0]),
    );
    const single = await q.runsByIds(db, wanted);
    const events = await q.eventsOfRuns(
      db,
      single.map((run) => run.run_id),
    );
    const jobsOut: Record<string, unknown> = {};
    for (const j of jobs) {
      const list = runs.get(j.id) ?? [];
      jobsOut[j.id] = {
        status: jobStatus(j, list[0], retries.get(list[0]?.run_id ?? '')),
        last_run_start: j.last_run_start,
        last_run_stop: j.last_run_stop,
        // For `/`'s "Next run", which must not go stale once it has passed.
        next_run: j.next_run,
        ended_at: j.ended_at,
        runs: list.map((run) => runJson(run, attemptsOf(j))),
      };
    }
    const runsOut: Record<string, unknown> = {};
    for (const run of single)
      runsOut[run.run_id] = {
        ...runJson(run),
        output_tail: run.output_tail,
        output_cut: run.output_cut === 1,
        output_total: run.output_total,
        stderr_lines: run.stderr_lines,
        events: events.get(run.run_id) ?? [],
      };
    res.json({ data: { jobs: jobsOut, runs: runsOut } });
  });

  r.use(apiPauseRouter(deps));
  r.use(apiKillRouter(deps));
  r.use(apiRunsRouter(deps));

  r.use((req, _res, next) =>
    next(new HttpError(404, `no such API route: ${req.method} /api${req.path}`)),
  );
  return r;
}
