import { Router } from 'express';
import { NotFoundError, ValidationError } from '../../core/errors';
import type { WebDeps } from '../app';
import { MAX_LIST_OFFSET, intParam, ints, isoTimeParam, runIdParam, values } from '../params';
import { runJson } from '../present';
import { attemptsOf } from '../present-policies';
import * as q from '../queries';
import { RUN_STATUSES, listRuns } from '../run-queries';

/** Most job ids one GET /api/runs may filter on. */
export const RUNS_MAX_JOB_FILTER = 100;

/**
 * GET /api/runs and GET /api/runs/<run_id>: runs across jobs, skipped,
 * missed and retry runs included, with their reason and attempt.
 */
export function apiRunsRouter(deps: WebDeps): Router {
  const { db } = deps;
  const r = Router();

  r.get('/runs', async (req, res) => {
    const jobIds = ints('job', req.query.job);
    if (jobIds && jobIds.length > RUNS_MAX_JOB_FILTER)
      throw new ValidationError(`job: at most ${RUNS_MAX_JOB_FILTER} job ids`, [
        { path: 'job', message: `at most ${RUNS_MAX_JOB_FILTER} job ids` },
      ]);
    const statuses = values(req.query.status);
    const unknown = statuses?.find((s) => !(RUN_STATUSES as readonly string[]).includes(s));
    if (unknown !== undefined)
      throw new ValidationError(
        `status: "${unknown.slice(0, 40)}" is not one of ${RUN_STATUSES.join(', ')}`,
        [{ path: 'status', message: `must be one of ${RUN_STATUSES.join(', ')}` }],
      );
    const since = isoTimeParam('since', req.query.since);
    const until = isoTimeParam('until', req.query.until);
    const perPage = Math.min(100, intParam('per_page', req.query.per_page, 10, 1, 1_000_000));
    const page = intParam('page', req.query.page, 0, 0, Math.floor(MAX_LIST_OFFSET / perPage));
    const runs = await listRuns(db, {
      jobIds: jobIds && [...new Set(jobIds)],
      statuses: statuses && [...new Set(statuses)],
      since,
      until,
      page,
      perPage,
    });
    const jobs = await jobsOf(
      db,
      runs.map((run) => run.job_id),
    );
    res.json({
      data: {
        runs: runs.map((run) => {
          const job = jobs.get(run.job_id);
          return runJson(run, job ? attemptsOf(job) : null);
        }),
      },
    });
  });

  r.get('/runs/:run_id', async (req, res) => {
    const id = runIdParam(req);
    const run = await q.runById(db, id);
    if (!run) throw new NotFoundError(`no run with id ${id}`);
    const [job, events] = await Promise.all([q.jobById(db, run.job_id), q.eventsOfRun(db, id)]);
    res.json({
      data: {
        run: {
          ...runJson(run, job ? attemptsOf(job) : null),
          output_tail: run.output_tail,
          output_cut: run.output_cut === 1,
          output_total: run.output_total,
          stderr_lines: run.stderr_lines,
          events,
        },
      },
    });
  });

  return r;
}

async function jobsOf(db: WebDeps['db'], ids: number[]) {
  const unique = [...new Set(ids)];
  const rows = unique.length
    ? ((await db('jobs').select('id', 'policies', 'enabled').whereIn('id', unique)) as Array<{
        id: number;
        policies: string | null;
        enabled: number;
      }>)
    : [];
  return new Map(rows.map((j) => [j.id, j]));
}
