/**
 * overlap replace with the real daemons from dist/: a job every 2 s whose
 * command sleeps 60 s. Each new occurrence kills the run still going
 * (through the kill path: its runner ends the process group) and starts;
 * the old run is recorded `killed`, "replaced by <run id>", killed by
 * "overlap replace", and it is never retried. Two runners as separate
 * processes, so the new run can start while the old one is being killed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { insertJobs, nextWholeSecond, startInjector } from '../helpers/injector';
import {
  groupAlive,
  postJson,
  runsOfJob,
  startResults,
  startRunner,
  startWeb,
  webConnected,
  type RunState,
} from '../helpers/control';
import { useServices, waitFor } from '../helpers/services';

const svc = useServices();
const dir = mkdtempSync(path.join(tmpdir(), 'cronq-replace-'));

describe('overlap replace', () => {
  test('each new occurrence kills the run still going and starts; the old one is killed, replaced by the new', async () => {
    svc.track(await startInjector(svc.db, svc.vhost));
    startResults(svc);
    const a = startRunner(svc, mkdtempSync(path.join(tmpdir(), 'cronq-replace-a-')));
    const b = startRunner(svc, mkdtempSync(path.join(tmpdir(), 'cronq-replace-b-')));
    await Promise.all([a.waitForLine('AMQP connected'), b.waitForLine('AMQP connected')]);
    const start = nextWholeSecond(1500);
    // Each run writes its process group id to a file named after its run.
    const [jobId] = await insertJobs(svc.db.db, [
      {
        name: 'replaced',
        schedule: `R3/${start.toISOString()}/PT2S`,
        nextRun: start,
        command: `echo $$ > ${dir}/$CRONQ_RUN_ID.pgid; sleep 60`,
      },
    ]);
    await svc.db
      .db('jobs')
      .where({ id: jobId })
      .update({
        policies: JSON.stringify({ overlap: 'replace', retries: { max: 3, on: ['failed'] } }),
      });

    // Three occurrences: the first two replaced, the third still running.
    const runs = await waitFor(
      async () => {
        const rows = await runsOfJob(svc.db.db, jobId!);
        const killed = rows.filter((r) => r.status === 'killed');
        return killed.length === 2 && rows.some((r) => r.status === 'running') ? rows : undefined;
      },
      { timeoutMs: 30_000, message: 'two runs replaced and the third running' },
    );
    assert.equal(runs.length, 3);
    const ordered: RunState[] = await svc.db
      .db('runs')
      .where({ job_id: jobId })
      .orderBy('scheduled_for')
      .select('run_id', 'status', 'reason', 'killed_by', 'started_at', 'triggered_by');
    assert.equal(ordered.length, 3, 'no retry of a killed run, nothing skipped');
    assert.deepEqual(
      ordered.map((r) => r.status),
      ['killed', 'killed', 'running'],
    );
    for (const i of [0, 1]) {
      const old = ordered[i]!;
      assert.equal(old.killed_by, 'overlap replace');
      assert.match(old.reason ?? '', new RegExp(`^replaced by ${ordered[i + 1]!.run_id}`));
      // It had started: its runner ended its process group.
      assert.ok(old.started_at !== null);
      const pgid = Number(readFileSync(path.join(dir, `${old.run_id}.pgid`), 'utf8'));
      await waitFor(() => !groupAlive(pgid), {
        timeoutMs: 5000,
        message: `group of ${old.run_id} gone`,
      });
    }
    // Clean up: the last run is killed like any other.
    const web = await startWeb(svc);
    await webConnected(web);
    assert.equal((await postJson(`${web.url}/api/runs/${ordered[2]!.run_id}/kill`)).status, 202);
    await waitFor(
      async () => (await runsOfJob(svc.db.db, jobId!)).every((r) => r.status === 'killed'),
      { message: 'all killed' },
    );
  });
});
