/**
 * A run the ledger has `killed` (killed before it started) that a runner
 * nevertheless runs is reported by the result write, so cronq-results can
 * send the kill order again (src/results/kill-again.ts): on its start, and
 * on every heartbeat after, since a first order may not have got through.
 * The real database; the end-to-end case with real daemons is in
 * control-kill.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/services';
import { insertRun, resultMessage } from '../helpers/results';
import { parseResultMessage } from '../../src/core/messages';
import { writeResults } from '../../src/results/store';

let tdb: TestDatabase;
before(async () => {
  tdb = await createTestDatabase();
});
after(async () => {
  await tdb.drop();
});

const write = (...msgs: Array<ReturnType<typeof resultMessage>>) =>
  writeResults(
    tdb.db,
    msgs.map((m) => parseResultMessage(JSON.stringify(m))),
  );

test('a start or a heartbeat of a run stored killed is reported; its end, or a live run, is not', async () => {
  await tdb.db('categories').insert({ id: 1, name: 'k' });
  await tdb.db('jobs').insert({ id: 1, name: 'j', command: 'true', category_id: 1 });
  const killed = await insertRun(tdb.db, 1, { status: 'killed' });
  const live = await insertRun(tdb.db, 1, { scheduledFor: new Date(Date.now() - 60_000) });

  assert.deepEqual((await write(resultMessage('starting', 1, killed))).startedAfterKill, [killed]);
  assert.deepEqual((await write(resultMessage('heartbeat', 1, killed))).startedAfterKill, [killed]);
  assert.deepEqual((await write(resultMessage('finished', 1, killed))).startedAfterKill, []);
  assert.deepEqual(
    (await write(resultMessage('starting', 1, live), resultMessage('heartbeat', 1, live)))
      .startedAfterKill,
    [],
  );
  const [row] = await tdb.db('runs').where({ run_id: killed }).select('status');
  assert.equal(row.status, 'killed', 'the ledger keeps killed');
});
