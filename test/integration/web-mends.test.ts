import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/services';
import { startTestWeb, type TestWeb } from '../helpers/web';
import { newRunId } from '../../src/core/runs';

/**
 * What the operator's walk-through of the admin found wrong (#19), each
 * read from the page as served: an ended Rn schedule names its last
 * occurrence, a lost run's duration reads the same on the job page and the
 * run page, "Timeout" reads "1 min", a finished run's "starting" badge does
 * not pulse, and a removed job's run page does not wait for events.
 */

let tdb: TestDatabase;
let web: TestWeb;

before(async () => {
  tdb = await createTestDatabase();
  web = await startTestWeb(tdb.db, tdb.url);
});

after(async () => {
  await web?.stop();
  await tdb?.drop();
});

async function page(path: string): Promise<string> {
  const res = await fetch(`${web.url}${path}`);
  assert.equal(res.status, 200, path);
  return res.text();
}

async function put(category: string, jobs: unknown[]): Promise<void> {
  const res = await fetch(`${web.url}/api/category/${category}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jobs }),
  });
  assert.equal(res.status, 200, await res.text());
}

async function jobId(name: string): Promise<number> {
  return ((await tdb.db('jobs').where('name', name).first('id')) as { id: number }).id;
}

test('an ended Rn schedule says when its last occurrence was, not when the category was saved', async () => {
  await put('once', [
    { name: 'two-shots', schedule: 'R2/2024-03-01T10:00:00Z/PT1H', command: 'true' },
  ]);
  const html = await page(`/job/${await jobId('two-shots')}`);
  assert.match(
    html,
    /id="ended">The schedule has ended: its last occurrence was <time datetime="2024-03-01T11:00:00.000Z"/,
  );
});

test('"Timeout" reads "1 min", not "1 min 0 s"', async () => {
  await put('timeouts', [{ name: 'minute', schedule: '0 3 * * *', command: 'true', timeout: 60 }]);
  const html = await page(`/job/${await jobId('minute')}`);
  assert.match(html, /<dt>Timeout<\/dt><dd>1 min<\/dd>/);
});

test('a lost run has the same duration on the job page and on the run page; its starting badge is still', async () => {
  await put('lost', [{ name: 'vanished', schedule: '0 3 * * *', command: 'sleep 600' }]);
  const id = await jobId('vanished');
  const runId = newRunId();
  const start = new Date(Date.now() - 600_000);
  await tdb.db('runs').insert({
    run_id: runId,
    job_id: id,
    job_name: 'vanished',
    scheduled_for: start,
    status: 'lost',
    reason: 'no heartbeat from runner-1 for 120 s',
    host: 'runner-1',
    queued_at: start,
    started_at: start,
    finished_at: new Date(start.getTime() + 185_000),
  });
  await tdb.db('events').insert({ job_id: id, run_id: runId, type: 'starting', datetime: start });
  const jobHtml = await page(`/job/${id}`);
  const runHtml = await page(`/run/${runId}`);
  const row = new RegExp(`<tr data-run-id="${runId}"[\\s\\S]*?</tr>`).exec(jobHtml)?.[0] ?? '';
  assert.match(row, />3 min 5 s</, 'the job page shows start to finish');
  assert.match(runHtml, /data-field="run_time">3 min 5 s</, 'the run page shows the same');
  assert.match(
    runHtml,
    /class="badge st-running still">starting</,
    'no pulse once the run is over',
  );
});

test('a run page of a removed job does not say "No events yet"', async () => {
  await put('gone', [{ name: 'temporary', schedule: '0 3 * * *', command: 'true' }]);
  const id = await jobId('temporary');
  const runId = newRunId();
  const at = new Date(Date.now() - 60_000);
  await tdb.db('runs').insert({
    run_id: runId,
    job_id: id,
    job_name: 'temporary',
    scheduled_for: at,
    status: 'succeeded',
    return_code: 0,
    queued_at: at,
    started_at: at,
    finished_at: at,
  });
  await put('gone', []); // removes the job, and its events with it
  const html = await page(`/run/${runId}`);
  assert.match(html, /temporary <span class="muted">\(removed\)<\/span>/);
  assert.doesNotMatch(html, /No events yet/);
  assert.match(html, /No events recorded: the job has been removed/);
});

test('a lost run names its runner, says the command may still run there, and how to check', async () => {
  await put('lost-note', [
    { name: 'etl', schedule: '0 3 * * *', command: "python3 /srv/etl.py --table 'orders'" },
  ]);
  const id = await jobId('etl');
  const runId = newRunId();
  const start = new Date(Date.now() - 600_000);
  await tdb.db('runs').insert({
    run_id: runId,
    job_id: id,
    job_name: 'etl',
    scheduled_for: start,
    status: 'lost',
    reason: 'no heartbeat from runner-7.example for 120 s',
    host: 'runner-7.example',
    queued_at: start,
    started_at: start,
    finished_at: new Date(start.getTime() + 120_000),
  });
  const html = await page(`/run/${runId}`);
  const note = /<p class="pausenote" id="lost-note">([\s\S]*?)<\/p>/.exec(html)?.[1] ?? '';
  assert.match(note, /<strong>runner-7\.example<\/strong> stopped reporting/);
  assert.match(note, /the command may still be running there/);
  assert.match(
    note,
    /ps -eo pid,pgid,lstart,args \| grep -F -- 'python3 \/srv\/etl\.py --table &#39;\\&#39;&#39;orders&#39;\\&#39;&#39;'<\/code>/,
  );
});

test('a lost run of a removed job gives no grep that would match every process', async () => {
  const runId = newRunId();
  const start = new Date(Date.now() - 300_000);
  await tdb.db('runs').insert({
    run_id: runId,
    job_id: 987_654,
    job_name: 'gone',
    scheduled_for: start,
    status: 'lost',
    host: 'runner-9.example',
    queued_at: start,
    started_at: start,
    finished_at: new Date(start.getTime() + 60_000),
  });
  const html = await page(`/run/${runId}`);
  assert.doesNotMatch(html, /grep -F -- &#39;&#39;|grep -F -- ''/);
  assert.match(html, /look for its command in <code>ps -eo pid,pgid,lstart,args<\/code>/);
});
