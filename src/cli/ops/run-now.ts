import { sleep } from '../../core/async';
import { CronqError } from '../../core/errors';
import { runCli } from '../common';
import type { ApiClient } from './api-client';
import { clientOf, opsCommand } from './command';
import { resolveJob } from './job-ref';
import type { ApiRunView } from './runs';

/** How long `cronq run` waits for the injector to queue the run (it looks every second or so). */
const QUEUE_WAIT_MS = 60_000;
const POLL_MS = 250;

/**
 * `cronq run JOB [--wait]`: POST /api/jobs/<id>/run, print the new run's
 * id; with --wait, follow the run and exit with its exit code.
 */
export async function run(argv: string[]): Promise<void> {
  const program = opsCommand(
    'run',
    'Run a job now (a manual run, through the ledger like any other) and print its run id.',
    "0 requested (with --wait: the run's exit code: 0 succeeded, the command's code if it failed, 1 when it ended without one), 1 refused by the server or unreachable, 2 bad usage or unknown job.",
  )
    .argument('<job>', 'the job (id or category/name)')
    .option('--wait', 'wait until the run ends; exit with its exit code')
    .action(async (ref: string, opts: { url?: string; wait?: boolean }) => {
      const api = clientOf(opts);
      const job = await resolveJob(api, ref);
      const runId = await requestRun(api, job.id);
      process.stdout.write(`${runId}\n`);
      if (!opts.wait) return;
      const done = await waitForEnd(api, runId);
      const code = exitCodeOf(done);
      process.stderr.write(
        `run ${runId} ${done.status}${done.return_code !== null ? ` (exit ${done.return_code})` : ''}\n`,
      );
      process.exitCode = code;
    });
  await runCli(program, argv);
}

/**
 * Ask for a run now and learn its id: from the answer when the server
 * gives it (`data.run.id`), else as the manual run of the job that was
 * not there before the request (the injector writes it within a second or so).
 */
async function requestRun(api: ApiClient, jobId: number): Promise<string> {
  const newest = () =>
    api
      .get<{ data: { runs: ApiRunView[] } }>(`api/runs?job=${jobId}&per_page=100`)
      .then((a) => a.data.runs);
  const before = new Set((await newest()).map((r) => r.id));
  const answer = await api.post<{ data?: { run?: { id?: unknown } } }>(`api/jobs/${jobId}/run`);
  const given = answer.data?.run?.id;
  if (typeof given === 'string' && /^[0-9a-f]{32}$/.test(given)) return given;
  const deadline = Date.now() + QUEUE_WAIT_MS;
  for (;;) {
    const fresh = (await newest()).find((r) => r.triggered_by === 'manual' && !before.has(r.id));
    if (fresh) return fresh.id;
    if (Date.now() > deadline)
      throw new CronqError(
        `run now was requested for job ${jobId}, but no run was queued within ${QUEUE_WAIT_MS / 1000} s (is cronq-injector running?)`,
      );
    await sleep(POLL_MS);
  }
}

/**
 * Poll the run until it is neither queued nor running; with `withinMs`,
 * give up after that long and return undefined.
 */
export async function waitForEnd(api: ApiClient, runId: string): Promise<ApiRunView>;
export async function waitForEnd(
  api: ApiClient,
  runId: string,
  withinMs: number,
): Promise<ApiRunView | undefined>;
export async function waitForEnd(
  api: ApiClient,
  runId: string,
  withinMs = Infinity,
): Promise<ApiRunView | undefined> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const r = (await api.get<{ data: { run: ApiRunView } }>(`api/runs/${runId}`)).data.run;
    if (r.status !== 'queued' && r.status !== 'running') return r;
    if (Date.now() >= deadline) return undefined;
    await sleep(POLL_MS);
  }
}

/** 0 for a success, the command's code when it has one, else 1. */
export function exitCodeOf(r: Pick<ApiRunView, 'status' | 'return_code'>): number {
  if (r.status === 'succeeded') return 0;
  const c = r.return_code;
  return typeof c === 'number' && Number.isInteger(c) && c > 0 && c <= 255 ? c : 1;
}
