import { Router, type Request, type Response } from 'express';
import { NotFoundError } from '../../core/errors';
import { FINAL_RUN_STATUSES } from '../../core/runs';
import { HttpError } from '../errors';
import { killRun } from '../kill';
import { wakeInjectors } from '../wake';
import type { WebDeps } from '../app';
import type { CsrfTokens } from '../csrf';
import { logUrl, splitCommand } from '../format';
import { jobStatus, scheduleView } from '../present';
import * as q from '../queries';
import {
  CHART_RUNS,
  definitionJson,
  jobHistory,
  jobRunsPage,
  runsPageParams,
} from '../job-history';
import { RUN_STATUSES } from '../../core/runs';
import { systemFromDb } from '../system';
import { brokerView, queuesToCheck } from '../queue-depths';
import { cutNote, outputFileName, outputLines, storedOutput } from '../run-output';
import { OVERVIEW_CHIPS, overviewPage, overviewParams, statusCounts } from '../overview';
import { pausedBy, setCategoryPaused, setJobPaused } from '../pause';
import { policiesOfRow } from '../../core/policies/row';
import { attemptText, attemptsOf, policiesJson } from '../present-policies';
import { queuedRetryAttempts } from '../run-queries';
import { failureGroups, failureParams } from '../failure-groups';
import { failingJobs, jobNotifyView, overdueJobs, runNotifyAttempts } from '../notify-queries';
import { GlobalTargetsReader } from '../global-targets';

/** Jobs per page of `/`. */
export const JOBS_PER_PAGE = 100;
/** The heading of `/`'s one list when it is not grouped by category. */
const SORT_TITLES = { failure: 'Failing first', next: 'By next run' } as const;
/** Status dots per job on `/`. */
const DOTS_PER_JOB = 10;

/** Render `view`, then wrap it in views/layout.ejs (the layout gets the page's HTML as `body`). */
async function renderPage(
  res: Response,
  view: string,
  locals: Record<string, unknown>,
): Promise<void> {
  const all = { ...res.locals, ...locals };
  const render = (name: string, l: Record<string, unknown>) =>
    new Promise<string>((resolve, reject) =>
      res.app.render(name, l, (err: Error | null, html?: string) =>
        err ? reject(err) : resolve(html ?? ''),
      ),
    );
  const body = await render(view, all);
  res.type('html').send(await render('layout', { ...all, body }));
}

function positiveInt(v: unknown, def: number): number {
  const s = typeof v === 'string' ? v : '';
  return /^\d{1,9}$/.test(s) && Number(s) >= 1 ? Number(s) : def;
}

function isFinal(status: string): boolean {
  return (FINAL_RUN_STATUSES as readonly string[]).includes(status);
}

function jobIdOf(req: Request): number {
  const raw = String(req.params.id);
  if (!/^\d{1,10}$/.test(raw)) throw new NotFoundError(`no job with id ${raw}`);
  return Number(raw);
}

export function pagesRouter(deps: WebDeps, csrf: CsrfTokens): Router {
  const { db, config } = deps;
  const now = deps.now ?? (() => new Date());
  const globalTargets = new GlobalTargetsReader(db, deps.logger);
  const r = Router();

  r.get('/', async (req, res) => {
    const text = typeof req.query.q === 'string' ? req.query.q.slice(0, 200) : '';
    const page = positiveInt(req.query.page, 1);
    const { status, sort } = overviewParams(req.query);
    const [{ jobs, total }, counts] = await Promise.all([
      overviewPage(db, { page: page - 1, perPage: JOBS_PER_PAGE, q: text, status, sort }),
      statusCounts(db, text),
    ]);
    const runs = await q.recentRunsBrief(
      db,
      jobs.map((j) => j.id),
      DOTS_PER_JOB,
    );
    const retries = await queuedRetryAttempts(
      db,
      [...runs.values()].map((list) => list[0]),
    );
    const at = now();
    const groups: Array<{ id: number | null; name: string; jobs: unknown[] }> = [];
    for (const j of jobs) {
      let g = groups[groups.length - 1];
      if (sort !== 'category') {
        // One list across categories, each row naming its category.
        if (!g) groups.push((g = { id: null, name: SORT_TITLES[sort], jobs: [] }));
      } else if (!g || g.id !== j.category_id) {
        g = { id: j.category_id, name: j.category_name ?? '(no category)', jobs: [] };
        groups.push(g);
      }
      const list = runs.get(j.id) ?? [];
      const latest = list[0];
      g.jobs.push({
        job: j,
        status: jobStatus(j, latest, retries.get(latest?.run_id ?? '')),
        lastStart: latest ? (latest.started_at ?? latest.queued_at) : j.last_run_start,
        schedule: scheduleView(j, at, 0),
        dots: [...list].reverse(),
      });
    }
    await renderPage(res, 'index', {
      title: 'Jobs',
      nav: 'jobs',
      groups,
      q: text,
      status,
      sort,
      counts,
      chips: OVERVIEW_CHIPS,
      page,
      pages: Math.max(1, Math.ceil(total / JOBS_PER_PAGE)),
      total,
      csrfToken: csrf.issue(),
      now: at,
    });
  });

  r.get('/job/:id', async (req, res) => {
    const id = jobIdOf(req);
    const job = await q.jobById(db, id);
    if (!job) throw new NotFoundError(`no job with id ${id}`);
    const runsQuery = runsPageParams(req.query);
    const table = await jobRunsPage(db, id, runsQuery);
    const filtered = runsQuery.status !== undefined || runsQuery.page > 1;
    // The chart and the status read the newest runs whatever the table shows.
    const recent = filtered
      ? ((await q.recentRuns(db, [id], CHART_RUNS)).get(id) ?? [])
      : table.runs.slice(0, CHART_RUNS);
    const [notify, everyJob] = await Promise.all([jobNotifyView(db, job), globalTargets.read()]);
    const at = now();
    const schedule = scheduleView(job, at, 5);
    await renderPage(res, 'job', {
      notify,
      everyJob,
      title: job.name,
      nav: 'jobs',
      job,
      status: jobStatus(job, recent[0], recent[0]?.attempt),
      runs: table.runs,
      runsQuery,
      runsMore: table.more,
      runStatuses: RUN_STATUSES,
      history: jobHistory(recent),
      definition: definitionJson(job, schedule.text),
      attempts: attemptsOf(job),
      attemptText,
      policies: policiesJson(policiesOfRow(job)),
      schedule,
      commandParts: splitCommand(job.command),
      csrfToken: csrf.issue(),
      queued: req.query.queued === '1',
      // Runs still going get a Kill button (their own list: the table is redrawn by live.js).
      going: recent.filter((run) => !isFinal(run.status)),
      killNotice: req.query.kill === '1',
      // A pause is told by the page's own note; a resume leaves none, so it gets one.
      notice:
        req.query.resumed === '1'
          ? 'Resumed: its catch_up policy decides what happens to the occurrences it missed.'
          : null,
      now: at,
    });
  });

  r.post('/job/:id/run', async (req, res) => {
    const id = jobIdOf(req);
    if (!(await q.requestRunNow(db, id))) throw new NotFoundError(`no job with id ${id}`);
    wakeInjectors(deps);
    deps.logger.info({ job_id: id }, 'run now requested (form)');
    res.redirect(303, `/job/${id}?queued=1`);
  });

  for (const action of ['pause', 'resume'] as const) {
    r.post(`/job/:id/${action}`, async (req, res) => {
      const id = jobIdOf(req);
      const by = action === 'pause' ? pausedBy(req, 'admin') : null;
      if (!(await setJobPaused(db, id, by))) throw new NotFoundError(`no job with id ${id}`);
      deps.logger.info({ job_id: id, by }, `job ${action}d (form)`);
      res.redirect(303, `/job/${id}?${action === 'pause' ? 'paused' : 'resumed'}=1`);
    });

    // The index lists categories by id (a name may hold any character).
    r.post(`/categories/:id/${action}`, async (req, res) => {
      const raw = String(req.params.id);
      const cat = /^\d{1,10}$/.test(raw) ? (await q.categories(db, [Number(raw)]))[0] : undefined;
      if (!cat) throw new NotFoundError(`no category with id ${raw}`);
      const by = action === 'pause' ? pausedBy(req, 'admin') : null;
      const n = await setCategoryPaused(db, cat.id, by);
      deps.logger.info({ category: cat.name, changed: n.changed }, `category ${action}d (form)`);
      const back = typeof req.body?.q === 'string' ? String(req.body.q).slice(0, 200) : '';
      res.redirect(303, `/${back ? `?${new URLSearchParams({ q: back }).toString()}` : ''}`);
    });
  }

  r.post('/run/:run_id/kill', async (req, res) => {
    const raw = String(req.params.run_id);
    if (!/^[0-9a-fA-F]{32}$/.test(raw)) throw new NotFoundError(`no run with id ${raw}`);
    const id = raw.toLowerCase();
    const out = await killRun(db, deps.control, { runId: id, by: pausedBy(req, 'admin') });
    if (out.kind === 'not_found') throw new NotFoundError(`no run with id ${id}`);
    if (out.kind === 'final')
      throw new HttpError(409, `run ${id} has already ended: ${out.status}`, {
        status: out.status,
      });
    deps.logger.info({ run_id: id, job_id: out.jobId, by: out.killedBy }, 'kill requested (form)');
    res.redirect(303, req.body?.back === 'job' ? `/job/${out.jobId}?kill=1` : `/run/${id}?kill=1`);
  });

  r.get('/run/:run_id', async (req, res) => {
    const runId = String(req.params.run_id);
    if (!/^[0-9a-fA-F]{32}$/.test(runId)) throw new NotFoundError(`no run with id ${runId}`);
    const id = runId.toLowerCase();
    const [run, events, notifyAttempts] = await Promise.all([
      q.runById(db, id),
      q.eventsOfRun(db, id),
      runNotifyAttempts(db, id),
    ]);
    if (!run && events.length === 0) throw new NotFoundError(`no run with id ${id}`);
    const jobId = run?.job_id ?? events[0]?.job_id ?? null;
    const job = jobId !== null ? await q.jobById(db, jobId) : undefined;
    const at = now();
    const attempts = job ? attemptsOf(job) : null;
    await renderPage(res, 'run', {
      title: `Run ${id.slice(0, 8)}`,
      nav: 'jobs',
      runId: id,
      run: run ?? null,
      events,
      job: job ?? null,
      jobId,
      jobName: job?.name ?? run?.job_name ?? (jobId !== null ? `job ${jobId}` : 'unknown job'),
      attemptLabel: run ? attemptText(run.attempt, attempts) : null,
      logLink: run ? logUrl(config.web.logUrlTemplate, run, at) : null,
      outputShownChars: q.OUTPUT_SHOWN_CHARS,
      outputLines: run ? outputLines(run.output_tail, run.stderr_lines) : [],
      cutNote: run ? cutNote(run.output_total, run.output_bytes) : null,
      notifyAttempts,
      csrfToken: csrf.issue(),
      canKill: run !== undefined && !isFinal(run.status),
      killNotice: req.query.kill === '1',
      now: at,
    });
  });

  r.get('/run/:run_id/output.txt', async (req, res) => {
    const runId = String(req.params.run_id).toLowerCase();
    const run = /^[0-9a-f]{32}$/.test(runId) ? await storedOutput(db, runId) : undefined;
    if (!run) throw new NotFoundError(`no run with id ${runId}`);
    res
      .type('text/plain; charset=utf-8')
      .set(
        'Content-Disposition',
        `attachment; filename="${outputFileName(run.job_name ?? 'run', runId)}"`,
      )
      .send(run.output_tail ?? '');
  });

  r.get('/system', async (_req, res) => {
    const sys = await systemFromDb(db);
    const broker = await brokerView(deps.broker, queuesToCheck(sys.runners.map((r) => r.queue)));
    await renderPage(res, 'system', { title: 'System', nav: 'system', sys, broker, now: now() });
  });

  r.get('/failures', async (req, res) => {
    const query = failureParams(req.query);
    const [{ groups, capped }, overdue, failing, categories] = await Promise.all([
      failureGroups(db, query),
      overdueJobs(db),
      failingJobs(db),
      q.categoryNames(db),
    ]);
    await renderPage(res, 'failures', {
      title: 'Failures',
      nav: 'failures',
      groups,
      capped,
      query,
      categories,
      categoryName: categories.find((c) => c.id === query.category)?.name ?? null,
      windowLabel: { '1h': 'hour', '24h': '24 hours', '7d': '7 days' }[query.window],
      overdue,
      failing,
      now: now(),
    });
  });

  return r;
}
