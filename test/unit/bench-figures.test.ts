/**
 * The benchmark's own arithmetic (bench/lib): the steady-state figures every
 * system is judged by (missed and duplicated occurrences, lag percentiles)
 * and the median/spread of repetitions. A bug here would make the README's
 * "0 missed, 0 duplicated" or its ratios wrong for every system at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { analyseSteady, type ExecutionRecord } from '../../bench/lib/occurrences';
import { percentile, spread } from '../../bench/lib/stats';
import { OUTPUT_TAIL_BYTES, runShell } from '../../bench/lib/spawn-true';

const FROM = 1_700_000_002_000;

function rec(job: string, scheduledFor: number, lag = 10, took = 5): ExecutionRecord {
  return {
    job,
    scheduledFor,
    startedAt: scheduledFor + lag,
    finishedAt: scheduledFor + lag + took,
  };
}

test('every occurrence run once: nothing missed or duplicated, lag from the occurrence to the start', () => {
  const records = [0, 1000, 2000].flatMap((t, i) => [
    rec('a', FROM + t, 10 + i),
    rec('b', FROM + 250 + t, 40),
  ]);
  const f = analyseSteady(records, {
    from: FROM,
    to: FROM + 3000,
    periodMs: 1000,
    jobs: ['a', 'b'],
  });
  assert.equal(f.missed, 0);
  assert.equal(f.duplicated, 0);
  assert.equal(f.executions, 6);
  assert.equal(f.runsPerSecond, 2);
  assert.equal(f.lagP50Ms, 12);
  assert.equal(f.lagMaxMs, 40);
});

test('a skipped occurrence is missed, a second run of one is duplicated, a job that never ran misses its whole window', () => {
  const records = [
    rec('a', FROM),
    rec('a', FROM + 2000),
    rec('a', FROM + 2000, 30),
    rec('a', FROM + 2000, 50),
  ];
  const f = analyseSteady(records, {
    from: FROM,
    to: FROM + 3000,
    periodMs: 1000,
    jobs: ['a', 'silent'],
  });
  assert.equal(f.missed, 1 + 3);
  assert.equal(f.duplicated, 2);
});

test('occurrences outside the window count neither as runs nor as missed', () => {
  const records = [
    rec('a', FROM - 1000),
    rec('a', FROM),
    rec('a', FROM + 1000),
    rec('a', FROM + 2000),
  ];
  const f = analyseSteady(records, { from: FROM, to: FROM + 2000, periodMs: 1000, jobs: ['a'] });
  assert.equal(f.executions, 2);
  assert.equal(f.missed, 0);
});

test('for any jobs, drops and repeats, missed and duplicated are exactly what was dropped and repeated', () => {
  const job = fc.record({
    phase: fc.integer({ min: 0, max: 999 }),
    // Per occurrence of the window: how often it ran (0 = missed).
    runs: fc.array(fc.constantFrom(0, 1, 1, 1, 2, 3), { minLength: 1, maxLength: 12 }),
    lag: fc.integer({ min: 0, max: 2000 }),
  });
  fc.assert(
    fc.property(fc.array(job, { minLength: 1, maxLength: 8 }), fc.integer(), (jobs, seed) => {
      const occurrences = Math.max(...jobs.map((j) => j.runs.length));
      const to = FROM + occurrences * 1000;
      const records: ExecutionRecord[] = [];
      let missed = 0;
      let duplicated = 0;
      let executions = 0;
      jobs.forEach((j, k) => {
        const name = `job${k}`;
        // One run before the window anchors the job's phase even when every
        // occurrence inside it was dropped.
        records.push(rec(name, FROM - 1000 + j.phase, j.lag));
        for (let i = 0; i < occurrences; i++) {
          const at = FROM + i * 1000 + j.phase;
          const n = j.runs[i] ?? 1;
          if (at >= to) continue;
          if (n === 0) missed++;
          duplicated += Math.max(0, n - 1);
          executions += n;
          for (let r = 0; r < n; r++) records.push(rec(name, at, j.lag + r));
        }
      });
      // The order records arrive in must not matter.
      let s = seed;
      for (let i = records.length - 1; i > 0; i--) {
        s = (s * 1103515245 + 12345) & 0x7fffffff;
        const r = s % (i + 1);
        [records[i], records[r]] = [records[r]!, records[i]!];
      }
      const f = analyseSteady(records, {
        from: FROM,
        to,
        periodMs: 1000,
        jobs: jobs.map((_, k) => `job${k}`),
      });
      assert.equal(f.missed, missed);
      assert.equal(f.duplicated, duplicated);
      assert.equal(f.executions, executions);
    }),
  );
});

test('percentiles are nearest-rank: always a value that was observed', () => {
  const v = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.equal(percentile(v, 50), 50);
  assert.equal(percentile(v, 99), 99);
  assert.equal(percentile(v, 100), 100);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
  fc.assert(
    fc.property(
      fc.array(fc.integer(), { minLength: 1 }),
      fc.integer({ min: 1, max: 100 }),
      (values, p) => {
        const x = percentile(values, p);
        assert.ok(values.includes(x));
        const atMost = values.filter((y) => y <= x).length;
        assert.ok(atMost >= Math.ceil((p / 100) * values.length));
      },
    ),
  );
});

test('spread: median of the repetitions that produced a figure, with min and max', () => {
  assert.deepEqual(
    { ...spread([3, 1, 2]), values: undefined },
    { median: 2, min: 1, max: 3, n: 3, values: undefined },
  );
  assert.equal(spread([4, 1, 3, 2]).median, 2.5);
  // A failed repetition (NaN) is left out, not counted as zero.
  const s = spread([NaN, 5, 7]);
  assert.equal(s.median, 6);
  assert.equal(s.n, 2);
  assert.ok(Number.isNaN(spread([NaN]).median));
});

test("the peers' unit of work: output thrown away, or the last 4 KiB of stdout and stderr kept once the pipes close", async () => {
  assert.deepEqual(await runShell('echo lost; exit 3', false), { code: 3, output: '' });
  const r = await runShell("head -c 10000 /dev/zero | tr '\\0' x; printf END", true);
  assert.equal(r.code, 0);
  assert.equal(r.output.length, OUTPUT_TAIL_BYTES);
  assert.ok(r.output.endsWith('xxEND'), JSON.stringify(r.output.slice(-10)));
  assert.deepEqual(await runShell('echo oops >&2; exit 1', true), { code: 1, output: 'oops\n' });
  // Output written after the shell exited, by a child still holding the pipe, is kept.
  assert.equal(
    (await runShell('(sleep 0.2; printf late) & printf early', true)).output,
    'earlylate',
  );
});
