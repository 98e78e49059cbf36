/**
 * DISRUPTIVE (to its own brokers only): CronQ on a real three-node RabbitMQ
 * cluster with quorum queues. scripts/rabbitmq-cluster.sh starts three extra
 * broker nodes (ports 5681-5683) for this file and stops them after it; the
 * shared node on 5672 is not touched. Every daemon gets all three nodes in
 * RABBITMQ_URL and must find the survivors by itself when a node stops.
 * Each test counts its runs from the ledger, the events and the commands'
 * own record of running: 0 lost, 0 doubled.
 *
 * CRONQ_CLUSTER_BURST sets the burst size (default 1000); a machine too
 * slow for 1,000 runs in the time below can run a smaller one.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/services';
import { startCommand, type Proc } from '../helpers/processes';
import { insertJobs, nextWholeSecond } from '../helpers/injector';
import {
  ctl,
  countBurst,
  nodeNumber,
  quorumLeaders,
  startCluster,
  startNode,
  stopCluster,
  stopNode,
} from '../helpers/cluster';
import {
  declareCore,
  declareJobQueue,
  DEFAULT_JOB_QUEUE,
  RESULTS_QUEUE,
} from '../../src/core/topology';

const BURST = Number(process.env.CRONQ_CLUSTER_BURST ?? 1000);

describe('CronQ on a three-node RabbitMQ cluster (quorum queues)', { timeout: 1_800_000 }, () => {
  let url: string | undefined;
  let skip: string | undefined;
  let tdb: TestDatabase;
  let dir: string;
  const procs: Proc[] = [];
  /** Nodes stopped by a test and not started again. */
  const down = new Set<number>();

  before(async () => {
    const started = await startCluster();
    if ('skip' in started) {
      skip = started.skip;
      return;
    }
    url = started.url;
    tdb = await createTestDatabase();
    dir = mkdtempSync(path.join(os.tmpdir(), 'cronq-cluster-'));
    // Declare the topology through node 1 only: a quorum queue's leader is
    // placed on the node its declaring client is connected to, so node 1
    // leads both cronq_results and cronq_jobs (checked below, not assumed).
    const conn = await amqp.connect(url.replace(/@[^/]*\//, '@127.0.0.1:5681/'));
    const ch = await conn.createChannel();
    await declareCore(ch, 'quorum');
    await declareJobQueue(ch, DEFAULT_JOB_QUEUE, 'quorum');
    await conn.close();
    const env = {
      DATABASE_URL: tdb.url,
      RABBITMQ_URL: url,
      CRONQ_QUEUE_TYPE: 'quorum',
      CRONQ_LOG_LEVEL: 'info',
      LOG_PATH: dir,
    };
    procs.push(startCommand('cronq-results', { env }));
    procs.push(startCommand('cronq-injector', { env }));
    for (let i = 0; i < 2; i++)
      procs.push(
        startCommand('cronq-runner', {
          env: { ...env, CRONQ_CONCURRENCY: '32', CRONQ_HOSTNAME: `runner${i}` },
        }),
      );
    for (const p of procs) await p.waitForLine('AMQP connected', 120_000);
  });

  after(async () => {
    try {
      await Promise.all(procs.map((p) => p.stop()));
      await tdb?.drop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    } finally {
      await stopCluster();
    }
  });

  function skipped(t: TestContext): boolean {
    if (skip !== undefined) t.skip(`cannot start extra RabbitMQ nodes here: ${skip}`);
    return skip !== undefined;
  }

  /** Insert `n` one-occurrence jobs whose command records that it ran; returns their ids and the record file. */
  async function burst(
    name: string,
    n: number,
    command = '',
  ): Promise<{ ids: number[]; file: string }> {
    const file = path.join(dir, `${name}.executions`);
    // Inserted idle (no schedule), then made due in one statement with a
    // command that writes its own job id, so no run starts before all exist.
    const ids = await insertJobs(
      tdb.db,
      Array.from({ length: n }, (_, i) => ({
        name: `${name}-${i}`,
        schedule: null,
        nextRun: null,
      })),
      name,
    );
    const start = nextWholeSecond(1500);
    await tdb.db.raw(
      `UPDATE jobs SET schedule = ?, next_run = ?, command = CONCAT(?, 'echo ', id, ' >> ', ?) WHERE id IN (${ids.map(() => '?').join(',')})`,
      [`R1/${start.toISOString()}/PT1S`, start, command, file, ...ids],
    );
    return { ids, file };
  }

  /** Which node leads both queues now, asked of a node that is up. */
  async function leaderOf(queue: string): Promise<number> {
    const ask = [1, 2, 3].find((n) => !down.has(n))!;
    const leaders = await quorumLeaders(ask);
    const leader = leaders.get(queue);
    assert.ok(leader, `no leader for ${queue}: ${JSON.stringify([...leaders])}`);
    return nodeNumber(leader);
  }

  async function finishedCount(ids: number[]): Promise<number> {
    const [row] = (await tdb
      .db('runs')
      .whereIn('job_id', ids)
      .where({ status: 'succeeded' })
      .count({ n: '*' })) as Array<{ n: number }>;
    return Number(row!.n);
  }

  async function expectAllOnce(ids: number[], file: string, timeoutMs: number): Promise<void> {
    await waitFor(async () => (await finishedCount(ids)) === ids.length, {
      timeoutMs,
      intervalMs: 500,
      message: `all ${ids.length} runs finished`,
    }).catch(() => undefined);
    const c = await countBurst(tdb.db, ids, file);
    assert.deepEqual(
      { lost: c.lost.length, doubled: c.doubled.length, missingEvents: c.missingEvents.length },
      { lost: 0, doubled: 0, missingEvents: 0 },
      `of ${c.jobs} runs: lost ${c.lost.slice(0, 10).join(',')} doubled ${c.doubled.slice(0, 10).join(',')} without one starting+finished ${c.missingEvents.slice(0, 5).join(',')}`,
    );
  }

  it(`stopping the node that leads cronq_results and the job queue in the middle of a burst of ${BURST} runs loses and doubles none`, async (t) => {
    if (skipped(t)) return;
    const leader = await leaderOf(RESULTS_QUEUE);
    assert.equal(await leaderOf(DEFAULT_JOB_QUEUE), leader, 'both queues led by one node');
    const { ids, file } = await burst('burst', BURST);
    await waitFor(async () => (await finishedCount(ids)) >= BURST / 4, {
      timeoutMs: 120_000,
      intervalMs: 100,
      message: 'a quarter of the burst finished',
    });
    const before = await finishedCount(ids);
    assert.ok(before < BURST, 'the burst was still running when the node stopped');
    await stopNode(leader);
    down.add(leader);
    await expectAllOnce(ids, file, 300_000);
    assert.notEqual(await leaderOf(RESULTS_QUEUE), leader);
    // Every daemon lost its connection to the stopped node (all started on node 1) and found another by itself.
    for (const p of procs) await p.waitForLine(/"reconnect":true.*AMQP connected/, 60_000);
  });

  it('restarting the stopped node, then stopping another in the middle of a burst, loses and doubles none', async (t) => {
    if (skipped(t)) return;
    const back = [...down][0];
    assert.ok(back !== undefined, 'the first test stopped a node');
    await startNode(back);
    down.delete(back);
    // Back in the cluster and a member of the queues again before another node goes.
    await waitFor(
      async () => {
        const out = await ctl(back, 'list_queues', '--no-table-headers', 'name', 'online');
        return out.split('\n').filter((l) => l.includes(`cq${back}@localhost`)).length >= 3;
      },
      { timeoutMs: 120_000, intervalMs: 2000, message: `node ${back} back in every queue` },
    );
    const leader = await leaderOf(RESULTS_QUEUE);
    const victim = leader !== back ? leader : [1, 2, 3].find((n) => n !== back)!;
    const { ids, file } = await burst('second', BURST);
    await waitFor(async () => (await finishedCount(ids)) >= BURST / 4, {
      timeoutMs: 120_000,
      intervalMs: 100,
      message: 'a quarter of the burst finished',
    });
    await stopNode(victim);
    down.add(victim);
    try {
      await expectAllOnce(ids, file, 300_000);
    } finally {
      await startNode(victim);
      down.delete(victim);
    }
  });

  it('stopping the node that leads cronq_results while a 30 s job runs: the job runs once and succeeds', async (t) => {
    if (skipped(t)) return;
    // All three nodes up (the test before restarted its node); wait until they are members again.
    await waitFor(
      async () => {
        const out = await ctl(1, 'list_queues', '--no-table-headers', 'name', 'online');
        return (
          out.split('\n').filter((l) => (l.match(/@localhost/g) ?? []).length === 3).length >= 3
        );
      },
      { timeoutMs: 120_000, intervalMs: 2000, message: 'every queue has three online members' },
    );
    const { ids, file } = await burst('long', 1, 'sleep 30; ');
    await waitFor(
      async () => {
        const [r] = (await tdb.db('runs').whereIn('job_id', ids).select('status')) as Array<{
          status: string;
        }>;
        return r?.status === 'running';
      },
      { timeoutMs: 60_000, message: 'the 30 s job is running' },
    );
    const leader = await leaderOf(RESULTS_QUEUE);
    await stopNode(leader);
    down.add(leader);
    try {
      await expectAllOnce(ids, file, 120_000);
    } finally {
      await startNode(leader);
      down.delete(leader);
    }
  });
});
