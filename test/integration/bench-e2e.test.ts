/**
 * The end-to-end benchmark works on a clean checkout: `bench/e2e.ts`, in
 * miniature (30-job burst, 5 jobs for 5 s, one repetition), runs CronQ's
 * real commands from dist/ beside the bare pipeline and, where they are
 * installed and their services answer, BullMQ and pg-boss; every system
 * stores every burst run, CronQ misses and doubles nothing, and the report
 * renders the ratios. The figures themselves mean nothing at this size: the
 * speed targets live in `npm run bench`, not in a timed test.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { cleanEnv, ROOT } from '../helpers/processes';
import { cpuTable, e2eTable } from '../../bench/lib/report';
import { PG, REDIS_URL } from '../../bench/lib/services';

const run = promisify(execFile);
const BURST = 30;

function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.setTimeout(2000);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
}

/** Why the peers cannot run here, or '' when they can. */
async function peersMissing(): Promise<string> {
  if (!existsSync(path.join(ROOT, 'bench/peers/node_modules/bullmq')))
    return 'peers not installed (npm ci --prefix bench/peers)';
  // The endpoints the benchmark itself will use (bench/lib/services.ts).
  const redis = new URL(REDIS_URL);
  if (!(await answers(redis.hostname, Number(redis.port || 6379))))
    return `no Redis at ${REDIS_URL}`;
  if (!(await answers(PG.host, PG.port))) return `no PostgreSQL at ${PG.host}:${PG.port}`;
  return '';
}

interface E2eResult {
  workload: Record<string, unknown>;
  summary: Record<string, { median: number }>;
  repetitions: Array<{
    burst: Record<string, { stored?: number; error?: string }>;
    steady: Record<
      string,
      { missed?: number; duplicated?: number; executions?: number; error?: string }
    >;
  }>;
}

let skipPeers = '';
let result: E2eResult;

before(async () => {
  skipPeers = await peersMissing();
  const systems = skipPeers ? 'ceiling,cronq' : 'ceiling,cronq,bullmq,pgboss';
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/e2e.ts'], {
    cwd: ROOT,
    env: {
      ...cleanEnv(),
      BENCH_E2E_REPS: '1',
      BENCH_E2E_BURST_JOBS: String(BURST),
      BENCH_E2E_STEADY_JOBS: '5',
      BENCH_E2E_STEADY_SECONDS: '5',
      BENCH_E2E_SYSTEMS: systems,
    },
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  result = JSON.parse(stdout) as E2eResult;
});

test('CronQ and the bare pipeline: every burst run stored, no steady occurrence missed or doubled, ratios reported', () => {
  const rep = result.repetitions[0]!;
  assert.equal(rep.burst.ceiling?.stored, BURST, JSON.stringify(rep.burst.ceiling));
  assert.equal(rep.burst.cronq?.stored, BURST, JSON.stringify(rep.burst.cronq));
  const steady = rep.steady.cronq!;
  assert.equal(steady.error, undefined);
  assert.ok(steady.executions! > 0);
  assert.equal(steady.missed, 0);
  assert.equal(steady.duplicated, 0);
  assert.ok(result.summary['ratio.burst_runs_per_s.cronq_over_ceiling']!.median > 0);
  const table = e2eTable(result as never);
  assert.match(table, /CronQ ÷ bare pipeline/);
  assert.match(cpuTable(result as never), /\| CronQ \|/);
});

test('BullMQ and pg-boss run the same workloads in the same run', (t) => {
  if (skipPeers) return t.skip(skipPeers);
  const rep = result.repetitions[0]!;
  for (const peer of ['bullmq', 'pgboss']) {
    assert.equal(rep.burst[peer]?.stored, BURST, `${peer}: ${JSON.stringify(rep.burst[peer])}`);
    assert.equal(
      rep.steady[peer]?.error,
      undefined,
      `${peer}: ${JSON.stringify(rep.steady[peer])}`,
    );
    assert.ok(rep.steady[peer]!.executions! > 0);
    assert.ok(result.summary[`ratio.burst_runs_per_s.cronq_over_${peer}`]!.median > 0);
  }
  const table = e2eTable(result as never);
  assert.match(table, /CronQ ÷ BullMQ/);
  assert.match(table, /CronQ ÷ pg-boss/);
});
