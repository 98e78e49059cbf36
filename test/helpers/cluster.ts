/**
 * The three-node RabbitMQ cluster of scripts/rabbitmq-cluster.sh, for the
 * cluster tests: start it (or say why it cannot be), stop and restart its
 * nodes, ask which node leads a quorum queue, and count every run of a
 * burst three ways (the runs ledger, the events, and the executions the
 * commands themselves wrote) so a lost or doubled run shows.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Knex } from '../../src/core/db';
import { ROOT } from './processes';

const run = promisify(execFile);
const SCRIPT = path.join(ROOT, 'scripts', 'rabbitmq-cluster.sh');

export const NODE_NAMES = ['cq1@localhost', 'cq2@localhost', 'cq3@localhost'] as const;

async function script(...args: string[]): Promise<string> {
  const { stdout } = await run(SCRIPT, args, { timeout: 600_000 });
  return stdout.trim();
}

/** Start the cluster; resolves with its RABBITMQ_URL, or with why it cannot run here. */
export async function startCluster(): Promise<{ url: string } | { skip: string }> {
  try {
    await run('sh', ['-c', 'command -v rabbitmq-server && command -v rabbitmqctl']);
  } catch {
    return { skip: 'rabbitmq-server is not installed on this machine' };
  }
  try {
    await script('start');
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return {
      skip: `scripts/rabbitmq-cluster.sh start failed: ${(e.stderr || e.message).trim().split('\n').slice(-3).join(' ')}`,
    };
  }
  return { url: await script('url') };
}

export async function stopCluster(): Promise<void> {
  await script('stop').catch(() => undefined);
}

/** 1-based node number of a node name. */
export function nodeNumber(name: string): number {
  const i = NODE_NAMES.indexOf(name as (typeof NODE_NAMES)[number]);
  if (i < 0) throw new Error(`not a cluster node: ${name}`);
  return i + 1;
}

export async function stopNode(n: number): Promise<void> {
  await script('stop-node', String(n));
}

export async function startNode(n: number): Promise<void> {
  await script('start-node', String(n));
}

export async function ctl(node: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', ['-q', '-n', NODE_NAMES[node - 1]!, ...args], {
    timeout: 120_000,
  });
  return stdout;
}

/** Name, leader and online members of every quorum queue, asked of a running node. */
export async function quorumLeaders(askNode: number): Promise<Map<string, string>> {
  const out = await ctl(askNode, 'list_queues', '--no-table-headers', 'name', 'leader');
  const leaders = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [name, leader] = line.trim().split(/\s+/);
    if (name && leader) leaders.set(name, leader);
  }
  return leaders;
}

export interface BurstCount {
  jobs: number;
  /** Jobs without a finished run in the ledger. */
  lost: number[];
  /** Jobs with more than one run row, or whose command ran more than once. */
  doubled: number[];
  /** Runs without both a `starting` and a `finished` event. */
  missingEvents: string[];
  finished: number;
}

/**
 * Count a burst's runs: `jobIds` each had one occurrence and a command that
 * appends its job id to `executionsFile` when it runs.
 */
export async function countBurst(
  db: Knex,
  jobIds: number[],
  executionsFile: string,
): Promise<BurstCount> {
  const runs = (await db('runs')
    .whereIn('job_id', jobIds)
    .select('run_id', 'job_id', 'status')) as Array<{
    run_id: string;
    job_id: number;
    status: string;
  }>;
  const events = (await db('events')
    .whereIn('job_id', jobIds)
    .whereIn('type', ['starting', 'finished'])
    .select('run_id', 'type')) as Array<{ run_id: string; type: string }>;
  const executions = new Map<number, number>();
  let text = '';
  try {
    text = readFileSync(executionsFile, 'utf8');
  } catch {
    // nothing ran yet
  }
  for (const line of text.split('\n')) {
    const id = Number(line.trim());
    if (line.trim() !== '') executions.set(id, (executions.get(id) ?? 0) + 1);
  }
  const runsPerJob = new Map<number, typeof runs>();
  for (const r of runs) runsPerJob.set(r.job_id, [...(runsPerJob.get(r.job_id) ?? []), r]);
  const eventsPerRun = new Map<string, string[]>();
  for (const e of events)
    eventsPerRun.set(e.run_id, [...(eventsPerRun.get(e.run_id) ?? []), e.type]);
  const lost: number[] = [];
  const doubled: number[] = [];
  const missingEvents: string[] = [];
  let finished = 0;
  for (const id of jobIds) {
    const rs = runsPerJob.get(id) ?? [];
    if ((executions.get(id) ?? 0) > 1 || rs.length > 1) doubled.push(id);
    if (!rs.some((r) => r.status === 'succeeded')) lost.push(id);
    else finished += 1;
    for (const r of rs) {
      const types = eventsPerRun.get(r.run_id) ?? [];
      if (
        types.filter((t) => t === 'starting').length !== 1 ||
        types.filter((t) => t === 'finished').length !== 1
      )
        missingEvents.push(r.run_id);
    }
  }
  return { jobs: jobIds.length, lost, doubled, missingEvents, finished };
}
