/**
 * Fixtures for the control tests (kill, replace, run now at once): the
 * real daemons from dist/ against a test database and vhost, jobs whose
 * command writes its process group id (the shell's pid: a runner starts
 * each command as a group leader) to a file, and checks on that group.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Knex } from '../../src/core/db';
import { startCommand, type Proc } from './processes';
import { waitFor, type Services } from './services';

/** A started `cronq-web` and its base URL. */
export interface WebProc {
  proc: Proc;
  url: string;
}

export async function startWeb(svc: Services, env: Record<string, string> = {}): Promise<WebProc> {
  const proc = svc.track(
    startCommand('cronq-web', {
      args: ['--port', '0'],
      env: { DATABASE_URL: svc.db.url, RABBITMQ_URL: svc.vhost.url, ...env },
    }),
  );
  const line = await proc.waitForLine(/listening on http/, 30_000);
  const port = Number(/"port":(\d+)/.exec(line)![1]);
  return { proc, url: `http://127.0.0.1:${port}` };
}

/** Wait until the web's control publisher is connected (it logs the AMQP connection). */
export async function webConnected(web: WebProc): Promise<void> {
  await web.proc.waitForLine('AMQP connected', 30_000);
}

export function startRunner(svc: Services, logDir: string, env: Record<string, string> = {}): Proc {
  return svc.track(
    startCommand('cronq-runner', {
      env: {
        DATABASE_URL: svc.db.url,
        RABBITMQ_URL: svc.vhost.url,
        LOG_PATH: logDir,
        CRONQ_KILL_GRACE_SECONDS: '1',
        CRONQ_LOG_LEVEL: 'info',
        ...env,
      },
    }),
  );
}

export function startResults(svc: Services): Proc {
  return svc.track(
    startCommand('cronq-results', {
      env: { DATABASE_URL: svc.db.url, RABBITMQ_URL: svc.vhost.url, CRONQ_LOG_LEVEL: 'info' },
    }),
  );
}

export function postJson(url: string, body: unknown = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

export interface RunState {
  run_id: string;
  job_id: number;
  status: string;
  triggered_by: string;
  started_at: Date | null;
  finished_at: Date | null;
  reason: string | null;
  killed_at: Date | null;
  killed_by: string | null;
  return_code: number | null;
}

export async function runsOfJob(db: Knex, jobId: number): Promise<RunState[]> {
  return (await db('runs')
    .where({ job_id: jobId })
    .orderBy('queued_at')
    .select(
      'run_id',
      'job_id',
      'status',
      'triggered_by',
      'started_at',
      'finished_at',
      'reason',
      'killed_at',
      'killed_by',
      'return_code',
    )) as RunState[];
}

/** The job's single run once it has status `status`. */
export async function runWithStatus(
  db: Knex,
  jobId: number,
  status: string,
  timeoutMs = 20_000,
): Promise<RunState> {
  return waitFor(async () => (await runsOfJob(db, jobId)).find((r) => r.status === status), {
    timeoutMs,
    message: `a run of job ${jobId} with status ${status}`,
  });
}

/** A command that writes its process group id to `<dir>/<name>.pgid`, then runs `rest`. */
export function groupCommand(dir: string, name: string, rest: string): string {
  return `echo $$ > ${path.join(dir, `${name}.pgid`)}; ${rest}`;
}

/** The process group id the job wrote, once it has. */
export async function pgidOf(dir: string, name: string): Promise<number> {
  const file = path.join(dir, `${name}.pgid`);
  return waitFor(
    () => (existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) || undefined : undefined),
    { timeoutMs: 20_000, message: `${name} wrote its process group id` },
  );
}

/**
 * True while any process of the group is still running. A zombie does not
 * count: it has ended and only waits for PID 1 to reap it, which in a
 * container may take seconds.
 */
export function groupAlive(pgid: number): boolean {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}
