import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { uniqueName, waitFor } from '../helpers/services';
import { useRunnerFixture, jobMessage } from '../helpers/runner-harness';

const fx = useRunnerFixture({ CRONQ_LOG_LEVEL: 'info' });

function logLinesOf(file: string, runId: string): Buffer[] {
  const all = readFileSync(path.join(fx.logDir, file));
  const out: Buffer[] = [];
  let start = 0;
  for (let nl = all.indexOf(10); nl !== -1; nl = all.indexOf(10, start)) {
    const line = all.subarray(start, nl);
    if (line.includes(runId)) out.push(line);
    start = nl + 1;
  }
  return out;
}

test('100,000 lines of output are all in the job log, and the result carries the last 64 KiB as a tail', async (t) => {
  const q = uniqueName('q');
  await fx.startRunner(q);
  const msg = jobMessage({ command: 'seq 1 100000; echo done >&2', name: 'many lines' });
  const t0 = Date.now();
  await fx.jobs.publish(q, msg);
  const fin = await fx.results.final(msg.run_id, 30_000);
  const elapsed = Date.now() - t0;
  assert.equal(fin.status, 'succeeded');
  assert.ok(Buffer.byteLength(fin.output!, 'utf8') <= 65536);
  assert.ok(
    fin.output!.endsWith('99999\n100000\ndone\n') || fin.output!.endsWith('100000\n'),
    'tail ends with the last lines',
  );
  assert.ok(fin.output!.includes('100000\n'));
  await waitFor(() => logLinesOf('many-lines.log', msg.run_id).length === 100_001, {
    timeoutMs: 5000,
    message: 'every line in the log',
  });
  const lines = logLinesOf('many-lines.log', msg.run_id).map((l) => l.toString('utf8'));
  const outs = lines.filter((l) => l.includes(' out ')).map((l) => l.slice(l.lastIndexOf(' ') + 1));
  assert.equal(outs.length, 100_000);
  assert.equal(outs[0], '1');
  assert.equal(outs[99_999], '100000');
  assert.ok(lines.some((l) => l.endsWith(' err done')));
  // Not a benchmark, only a guard against a per-line synchronous write creeping in.
  assert.ok(elapsed < 15_000, `100,000 lines took ${elapsed} ms`);
  t.diagnostic(`100,000 lines: ${elapsed} ms from publish to finished, run_time ${fin.run_time} s`);
});

test('invalid UTF-8 and binary output do not break the run: raw bytes in the log, a valid string in the result', async () => {
  const q = uniqueName('q');
  await fx.startRunner(q, { CRONQ_RUNNER_LOG_TO_STDOUT: '1' });
  const msg = jobMessage({
    command:
      "printf 'bad \\377\\376 bytes\\n'; head -c 4000 /dev/urandom; printf '\\nlast line\\n'",
    name: 'binary',
  });
  await fx.jobs.publish(q, msg);
  const fin = await fx.results.final(msg.run_id);
  assert.equal(fin.status, 'succeeded');
  assert.ok(fin.output!.includes('bad \uFFFD\uFFFD bytes\n'));
  assert.ok(fin.output!.endsWith('last line\n'));
  assert.ok(
    !/[\uD800-\uDFFF]/.test(fin.output!.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '')),
    'no lone surrogates',
  );
  await waitFor(
    () =>
      logLinesOf('binary.log', msg.run_id).some((l) =>
        l.includes(Buffer.from('bad \xff\xfe bytes', 'latin1')),
      ),
    {
      timeoutMs: 5000,
      message: 'raw bytes kept in the job log',
    },
  );
});

test('a small tail cut inside a multi-byte character starts at the next whole character', async () => {
  const q = uniqueName('q');
  await fx.startRunner(q, { CRONQ_OUTPUT_TAIL_BYTES: '10' });
  const msg = jobMessage({ command: "printf 'aaaa€€€€€'" });
  await fx.jobs.publish(q, msg);
  const fin = await fx.results.final(msg.run_id);
  // 9 bytes of the last three euro signs fit in 10; the stray continuation byte before them is skipped.
  assert.equal(fin.output, '€€€');
});

test('output echoed to the runner log when CRONQ_RUNNER_LOG_TO_STDOUT is set', async () => {
  const q = uniqueName('q');
  const p = await fx.startRunner(q, { CRONQ_RUNNER_LOG_TO_STDOUT: 'true' });
  const msg = jobMessage({ command: 'echo echoed-line-1234' });
  await fx.jobs.publish(q, msg);
  await fx.results.final(msg.run_id);
  const line = await p.waitForLine('echoed-line-1234');
  const parsed = JSON.parse(line) as Record<string, unknown>;
  assert.equal(parsed.run_id, msg.run_id);
  assert.equal(parsed.stream, 'out');
});
