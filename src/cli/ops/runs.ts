import { UsageError } from '../../core/errors';
import { runCli } from '../common';
import { ApiError } from './api-client';
import { USUAL_EXITS, clientOf, intArg, opsCommand, printJson } from './command';
import { resolveJob } from './job-ref';
import { formatTable, shortTime, terminalWidth } from './table';

/** A run as GET /api/runs answers it (the fields the commands use). */
export interface ApiRunView {
  id: string;
  job_id: number;
  job_name?: string | null;
  status: string;
  started_at: string | null;
  completed_at: string | null;
  queued_at: string | null;
  return_code: number | null;
  triggered_by: string;
  host: string | null;
  [field: string]: unknown;
}

/** `cronq runs`: the newest runs, of one job or of all, optionally of some statuses. */
export async function run(argv: string[]): Promise<void> {
  const program = opsCommand(
    'runs',
    'List the newest runs (newest first): run id, job, status, when, exit code.',
    USUAL_EXITS,
  )
    .option('--job <job>', 'only the runs of this job (id or category/name)')
    .option(
      '--status <status>',
      'only runs of this status (queued, running, succeeded, failed, ...; comma-separated for several)',
    )
    .option('--limit <n>', 'how many runs (1-100, default 20)', '20')
    .option('--json', 'print the runs as the API answers them (a JSON array)')
    .action(
      async (opts: {
        url?: string;
        job?: string;
        status?: string;
        limit: string;
        json?: boolean;
      }) => {
        const limit = intArg('--limit', opts.limit, 1, 100);
        const api = clientOf(opts);
        const q = new URLSearchParams({ per_page: String(limit) });
        if (opts.job !== undefined) q.set('job', String((await resolveJob(api, opts.job)).id));
        if (opts.status !== undefined) q.set('status', opts.status);
        const runs = (
          await badArgumentOn400(api.get<{ data: { runs: ApiRunView[] } }>(`api/runs?${q}`))
        ).data.runs;
        if (opts.json) printJson(runs);
        else process.stdout.write(runsTable(runs, terminalWidth()));
      },
    );
  await runCli(program, argv);
}

export function runsTable(runs: ApiRunView[], width: number): string {
  return formatTable(
    [
      { header: 'RUN ID', min: 32 },
      { header: 'JOB', shrink: true, min: 6 },
      { header: 'STATUS', shrink: true, min: 7 },
      { header: 'STARTED (UTC)', min: 10 },
      { header: 'EXIT', align: 'right' },
    ],
    runs.map((r) => [
      r.id,
      r.job_name ?? r.job_id,
      r.status,
      monthDayTime(r.started_at ?? r.queued_at),
      r.return_code,
    ]),
    width,
  );
}

/** "2024-05-01T13:00:05Z" -> "05-01 13:00:05" (UTC). */
function monthDayTime(iso: string | null): string {
  return iso ? shortTime(iso).slice(5) : '-';
}

/** The server refusing a filter (400) is a bad argument of the command: exit 2. */
async function badArgumentOn400<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ApiError && err.status === 400) throw new UsageError(err.message);
    throw err;
  }
}
