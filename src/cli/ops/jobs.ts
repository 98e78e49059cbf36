import { runCli } from '../common';
import { USUAL_EXITS, clientOf, opsCommand, printJson } from './command';
import type { ApiJob } from './job-ref';
import { formatTable, shortTime, terminalWidth } from './table';
import type { ApiClient } from './api-client';

/** Jobs listed at most (100 pages of GET /api/jobs). */
const MAX_JOBS = 10_000;

/** `cronq jobs`: every job with its schedule, next run and last status. */
export async function run(argv: string[]): Promise<void> {
  const program = opsCommand(
    'jobs',
    'List the jobs: id, name, category, schedule, next run and last status.',
    USUAL_EXITS,
  )
    .option('--category <name>', 'only the jobs of this category')
    .option('--json', 'print the jobs as the API answers them (a JSON array)')
    .action(async (opts: { url?: string; category?: string; json?: boolean }) => {
      const jobs = await allJobs(clientOf(opts), opts.category);
      if (opts.json) printJson(jobs);
      else process.stdout.write(jobsTable(jobs, terminalWidth()));
    });
  await runCli(program, argv);
}

async function allJobs(api: ApiClient, category: string | undefined): Promise<ApiJob[]> {
  const out: ApiJob[] = [];
  for (let page = 0; out.length < MAX_JOBS; page++) {
    const q = new URLSearchParams({ per_page: '100', page: String(page), sort: 'id.asc' });
    if (category !== undefined && !category.includes(',')) q.set('category.name', category);
    const jobs = (await api.get<{ data: { jobs: ApiJob[] } }>(`api/jobs?${q}`)).data.jobs;
    // category.name splits at commas on the server: a name with one is filtered here only.
    out.push(...jobs.filter((j) => category === undefined || j.category?.name === category));
    if (jobs.length < 100) break;
  }
  return out;
}

/** When a job runs next, or why it does not. */
export function nextRunText(j: ApiJob): string {
  if (!j.enabled) return 'disabled';
  if (j.paused_at) return 'paused';
  if (j.schedule_error) return 'schedule error';
  if (j.ended_at && !j.next_run) return 'ended';
  return minuteOrSecond(shortTime(j.next_run));
}

/** "2030-01-01 00:00:00" -> "2030-01-01 00:00": most schedules fall on whole minutes. */
function minuteOrSecond(t: string): string {
  return t.endsWith(':00') && t.length === 19 ? t.slice(0, 16) : t;
}

export function jobsTable(jobs: ApiJob[], width: number): string {
  return formatTable(
    [
      { header: 'ID', align: 'right' },
      { header: 'NAME', shrink: true, min: 8 },
      { header: 'CATEGORY', shrink: true, min: 8 },
      { header: 'SCHEDULE', shrink: true, min: 8 },
      { header: 'NEXT RUN (UTC)', min: 10 },
      { header: 'STATUS', shrink: true, min: 6 },
    ],
    jobs.map((j) => [j.id, j.name, j.category?.name, j.schedule, nextRunText(j), j.status]),
    width,
  );
}
