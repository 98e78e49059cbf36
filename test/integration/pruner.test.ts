/**
 * cronq-pruner as a real process against a database holding events, runs
 * and notifications of three jobs: every mode and flag combination, and the
 * exact rows left.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/services';
import { runCommand } from '../helpers/processes';
import { dbNow } from '../../src/core/db';

let t: TestDatabase;
const DAY = 86_400_000;

/** Age (ms before now) of each round k of runs; every job runs once per round. */
const ROUND_AGE = [40 * DAY, 31 * DAY, 10 * DAY, 3_600_000];
const JOBS = [1, 2, 3];

/** Event id of round k, job j: rounds are written in time order, jobs interleaved. */
function eventId(k: number, j: number, type: 'starting' | 'finished'): number {
  return 1 + (k * 3 + (j - 1)) * 2 + (type === 'finished' ? 1 : 0);
}
const runId = (name: string) => name.padEnd(32, '_');

/**
 * Notifications by id: [job, state, event, age, target key, attempts]. Job 3
 * is failing since 50 days; its notifications go like any done ones (the
 * repeat_after rule keeps its marks on the job row, jobs.notify_marks).
 */
const NOTIFICATIONS: Array<[number, string, string, number, string, number]> = [
  [1, 'sent', 'failed', 40 * DAY, 'k1', 2], // n1: old, done
  [1, 'pending', 'failed', 40 * DAY, 'k2', 1], // n2: old, still being retried
  [2, 'failed', 'failed', 35 * DAY, 'k1', 3], // n3: old, given up
  [1, 'sent', 'recovered', 3_600_000, 'k1', 1], // n4: recent
  [3, 'sent', 'failed', 48 * DAY, 'k1', 1], // n5: old, an earlier failure of job 3's streak
  [3, 'sent', 'failed', 45 * DAY, 'k1', 2], // n6: old, the streak's newest failure to k1 (may go too)
  [3, 'sent', 'overdue', 44 * DAY, 'k1', 0], // n7: old, not a failure event
];
const ALL_NOTIFICATIONS = NOTIFICATIONS.map((_, i) => i + 1);
const attemptsOf = (ids: number[]) => ids.reduce((n, id) => n + NOTIFICATIONS[id - 1]![5], 0);

async function seed(): Promise<void> {
  const db = t.db;
  await db('notification_attempts').del();
  await db('notifications').del();
  await db('events').del();
  await db('runs').del();
  await db('jobs').del();
  await db('categories').del();
  const now = (await dbNow(db)).getTime();
  const at = (ageMs: number) => new Date(Math.floor((now - ageMs) / 1000) * 1000);
  await db('categories').insert({ id: 1, name: 'prune' });
  for (const j of JOBS)
    await db('jobs').insert({
      id: j,
      name: `job ${j}`,
      category_id: 1,
      command: 'true',
      routing_key: 'default',
    });
  const events: object[] = [];
  const runs: object[] = [];
  ROUND_AGE.forEach((age, k) => {
    for (const j of JOBS) {
      const rid = runId(`r${j}${k}`);
      events.push({
        id: eventId(k, j, 'starting'),
        job_id: j,
        run_id: rid,
        type: 'starting',
        datetime: at(age),
        host: 'h',
      });
      events.push({
        id: eventId(k, j, 'finished'),
        job_id: j,
        run_id: rid,
        type: 'finished',
        datetime: at(age - 1000),
        host: 'h',
        return_code: 0,
      });
      runs.push({
        run_id: rid,
        job_id: j,
        job_name: `job ${j}`,
        scheduled_for: at(age),
        status: 'succeeded',
        queued_at: at(age),
        started_at: at(age),
        finished_at: at(age - 1000),
      });
    }
  });
  // A run still going, whose only event is old and has the highest id.
  events.push({
    id: 25,
    job_id: 1,
    run_id: runId('r1run'),
    type: 'starting',
    datetime: at(50 * DAY),
    host: 'h',
  });
  runs.push({
    run_id: runId('r1run'),
    job_id: 1,
    scheduled_for: at(50 * DAY),
    status: 'running',
    queued_at: at(50 * DAY),
    started_at: at(50 * DAY),
  });
  // A run still queued, with no events.
  runs.push({
    run_id: runId('r2queued'),
    job_id: 2,
    scheduled_for: at(50 * DAY),
    status: 'queued',
    queued_at: at(50 * DAY),
  });
  // A final run that never had events (marked lost without a result).
  runs.push({
    run_id: runId('r3lost'),
    job_id: 3,
    scheduled_for: at(45 * DAY),
    status: 'lost',
    queued_at: at(45 * DAY),
  });
  // A final run of a job that has no events at all.
  await db('jobs').insert({
    id: 4,
    name: 'job 4',
    category_id: 1,
    command: 'true',
    routing_key: 'default',
  });
  runs.push({
    run_id: runId('r4done'),
    job_id: 4,
    scheduled_for: at(45 * DAY),
    status: 'failed',
    queued_at: at(45 * DAY),
    reason: 'no queue',
  });
  await db('events').insert(events);
  await db('runs').insert(runs);
  await db('jobs')
    .where('id', 3)
    .update({ failing_since: at(50 * DAY), failures: 4 });
  for (const [k, [jobId, state, event, age, key, attempts]] of NOTIFICATIONS.entries()) {
    const id = k + 1;
    await db('notifications').insert({
      id,
      job_id: jobId,
      event,
      state,
      target_key: key,
      target: '{"webhook":"https://hooks.example.com/x"}',
      created_at: at(age),
      next_at: at(age),
      attempts,
    });
    for (let a = 0; a < attempts; a += 1)
      await db('notification_attempts').insert({
        notification_id: id,
        at: at(age - a * 1000),
        status_code: 200,
        duration_ms: 5,
      });
  }
}

async function left(): Promise<{
  events: number[];
  runs: string[];
  notifications: number[];
  attempts: number[];
}> {
  const ev = (await t.db('events').select('id').orderBy('id')) as Array<{ id: number }>;
  const rs = (await t.db('runs').select('run_id').orderBy('run_id')) as Array<{ run_id: string }>;
  const ns = (await t.db('notifications').select('id').orderBy('id')) as Array<{ id: number }>;
  const as = (await t
    .db('notification_attempts')
    .select('notification_id')
    .orderBy('id')) as Array<{ notification_id: number }>;
  return {
    events: ev.map((e) => e.id),
    runs: rs.map((r) => r.run_id.replace(/_+$/, '')),
    notifications: ns.map((n) => Number(n.id)),
    attempts: as.map((a) => Number(a.notification_id)),
  };
}

/** The notification id of each attempt row left when `gone` are deleted. */
const attemptsLeft = (gone: number[]) =>
  NOTIFICATIONS.flatMap(([, , , , , n], i) => (gone.includes(i + 1) ? [] : Array(n).fill(i + 1)));

const ALL_EVENTS = Array.from({ length: 25 }, (_, i) => i + 1);
const ALL_RUNS = [
  ...JOBS.flatMap((j) => ROUND_AGE.map((_, k) => `r${j}${k}`)),
  'r1run',
  'r2queued',
  'r3lost',
  'r4done',
].sort();
const without = <T>(all: T[], gone: T[]) => all.filter((x) => !gone.includes(x));
const roundEvents = (ks: number[], js = JOBS) =>
  ks.flatMap((k) => js.flatMap((j) => [eventId(k, j, 'starting'), eventId(k, j, 'finished')]));
const roundRuns = (ks: number[], js = JOBS) => ks.flatMap((k) => js.map((j) => `r${j}${k}`));

async function pruner(...args: string[]) {
  return runCommand('cronq-pruner', { args, env: { DATABASE_URL: t.url } });
}

before(async () => {
  t = await createTestDatabase();
});
after(async () => {
  await t?.drop();
});

describe('cronq-pruner deletes exactly what its flags say', () => {
  beforeEach(seed);

  const cases: Array<{
    name: string;
    args: string[];
    events: number[];
    runs: string[];
    /** Notifications deleted (with their attempts). */
    notifications?: number[];
  }> = [
    {
      name: '--first/--last/--interval delete the id range and the final runs left without events, and no notification (their ids are not event ids)',
      args: ['--first', '1', '--last', '6', '--interval', '2'],
      events: [1, 2, 3, 4, 5, 6],
      runs: ['r10', 'r20', 'r30'],
    },
    {
      name: "a range that takes only part of a run's events keeps the run",
      args: ['--first', '2', '--last', '3'],
      events: [2, 3],
      runs: [],
    },
    {
      name: 'a range past the last id stops at the last event and never deletes a running run',
      args: ['--first', '20', '--last', '1000000', '--interval', '100'],
      events: [20, 21, 22, 23, 24, 25],
      runs: ['r23', 'r33'],
    },
    {
      name: 'a range without events deletes nothing',
      args: ['--first', '500', '--last', '600'],
      events: [],
      runs: [],
    },
    {
      name: '--keep 2 keeps the newest two events (and notifications) of every job and the runs not older than them',
      args: ['--keep', '2'],
      events: without(ALL_EVENTS, [20, 25, 21, 22, 23, 24]),
      runs: [...roundRuns([0, 1, 2]), 'r3lost'],
      notifications: [1, 5],
    },
    {
      name: '--keep 2 --interval 1 deletes the same rows one statement per row',
      args: ['--keep', '2', '--interval', '1'],
      events: without(ALL_EVENTS, [20, 25, 21, 22, 23, 24]),
      runs: [...roundRuns([0, 1, 2]), 'r3lost'],
      notifications: [1, 5],
    },
    {
      name: '--keep 0 deletes every event, final run and done notification, but no queued or running run and no pending notification',
      args: ['--keep', '0'],
      events: ALL_EVENTS,
      runs: without(ALL_RUNS, ['r1run', 'r2queued']),
      notifications: [1, 3, 4, 5, 6, 7],
    },
    {
      name: "--keep larger than any job's history deletes nothing",
      args: ['--keep', '100'],
      events: [],
      runs: [],
    },
    {
      name: '--older-than 30d deletes older events (by time, not id order), older final runs and older sent or failed notifications with their attempts; an old pending one and a new one are kept',
      args: ['--older-than', '30d'],
      events: [...roundEvents([0, 1]), 25],
      runs: [...roundRuns([0, 1]), 'r3lost', 'r4done'],
      notifications: [1, 3, 5, 6, 7],
    },
    {
      name: '--older-than P30D (ISO 8601) is the same as 30d, also one row per statement',
      args: ['--older-than', 'P30D', '--interval', '1'],
      events: [...roundEvents([0, 1]), 25],
      runs: [...roundRuns([0, 1]), 'r3lost', 'r4done'],
      notifications: [1, 3, 5, 6, 7],
    },
    {
      name: '--older-than PT2H keeps only the last hour',
      args: ['--older-than', 'PT2H'],
      events: [...roundEvents([0, 1, 2]), 25],
      runs: [...roundRuns([0, 1, 2]), 'r3lost', 'r4done'],
      notifications: [1, 3, 5, 6, 7],
    },
    {
      name: '--older-than 8w deletes nothing when everything is younger',
      args: ['--older-than', '8w'],
      events: [],
      runs: [],
    },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const notifications = c.notifications ?? [];
      const r = await pruner(...c.args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stdout.trim(),
        `removed ${c.events.length} events and ${c.runs.length} runs, ` +
          `${notifications.length} notifications and ${attemptsOf(notifications)} notification attempts`,
      );
      const rows = await left();
      assert.deepEqual(rows.events, without(ALL_EVENTS, c.events));
      assert.deepEqual(rows.runs, without(ALL_RUNS, c.runs).sort());
      assert.deepEqual(rows.notifications, without(ALL_NOTIFICATIONS, notifications));
      assert.deepEqual(rows.attempts, attemptsLeft(notifications));
    });
  }
});

describe('cronq-pruner refuses contradictory or incomplete flags with one line and exit 2, deleting nothing', () => {
  before(seed);

  const bad: Array<{ args: string[]; message: RegExp }> = [
    { args: [], message: /say what to delete/ },
    { args: ['--first', '1'], message: /--first needs --last/ },
    { args: ['--last', '5'], message: /--last needs --first/ },
    {
      args: ['--first', '5', '--last', '2'],
      message: /--first \(5\) is greater than --last \(2\)/,
    },
    { args: ['--first', '-1', '--last', '2'], message: /--first must be at least 0/ },
    { args: ['--first', 'a', '--last', '2'], message: /--first must be a whole number/ },
    {
      args: ['--keep', '2', '--first', '1', '--last', '3'],
      message: /--first\/--last and --keep cannot be combined/,
    },
    {
      args: ['--keep', '2', '--older-than', '30d'],
      message: /--keep and --older-than cannot be combined/,
    },
    {
      args: ['--first', '1', '--last', '3', '--older-than', '1d'],
      message: /--first\/--last and --older-than cannot be combined/,
    },
    { args: ['--interval', '10'], message: /say what to delete/ },
    { args: ['--keep', '-1'], message: /--keep must be at least 0/ },
    { args: ['--keep', '1.5'], message: /--keep must be a whole number/ },
    { args: ['--keep', '1', '--interval', '0'], message: /--interval must be at least 1/ },
    { args: ['--keep', '1', '--interval', '-3'], message: /--interval must be at least 1/ },
    { args: ['--older-than', '0d'], message: /--older-than must be a positive duration/ },
    { args: ['--older-than', 'soon'], message: /--older-than must be an ISO 8601 duration/ },
    { args: ['--keep'], message: /argument missing/ },
    { args: ['--frist', '1'], message: /unknown option '--frist'/ },
  ];
  for (const b of bad) {
    test(`cronq-pruner ${b.args.join(' ') || '(no flags)'} exits 2: ${b.message.source}`, async () => {
      const r = await pruner(...b.args);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      const lines = r.stderr.trim().split('\n');
      // commander may add a "(Did you mean ...?)" line to an unknown option
      assert.equal(lines.filter((l) => !l.startsWith('(Did you mean')).length, 1, r.stderr);
      assert.match(lines[0]!, b.message);
      assert.equal(r.stdout, '');
    });
  }

  test('nothing was deleted by the refused invocations', async () => {
    const rows = await left();
    assert.deepEqual(rows.events, ALL_EVENTS);
    assert.deepEqual(rows.runs, ALL_RUNS);
    assert.deepEqual(rows.notifications, ALL_NOTIFICATIONS);
  });

  test('a bad DATABASE_URL is one line naming the setting and exit 2', async () => {
    const r = await runCommand('cronq-pruner', {
      args: ['--keep', '1'],
      env: { DATABASE_URL: 'postgres://x/y' },
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr.trim(), /^cronq-pruner: DATABASE_URL="postgres:\/\/x\/y" is not valid/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  test('--help describes every mode and exits 0', async () => {
    const r = await runCommand('cronq-pruner', { args: ['--help'] });
    assert.equal(r.code, 0);
    for (const flag of [
      '--first',
      '--last',
      '--interval',
      '--keep',
      '--older-than',
      'DATABASE_URL',
    ])
      assert.ok(r.stdout.includes(flag), flag);
  });
});
