import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MessageFormatError } from '../../src/core/errors';
import {
  COMMAND_MAX_BYTES,
  EARLIEST_TIME_MS,
  INT32_MAX,
  INT32_MIN,
  MAX_AHEAD_MS,
  MAX_SECONDS,
} from '../../src/core/message-fields';
import {
  parseJobMessage,
  parseResultMessage,
  RESULT_TYPES,
  type JobToRun,
  type ResultMessage,
} from '../../src/core/messages';

/**
 * The parsers of both queues (the runner's job messages, the results
 * consumer's result messages) take anything: they return a value whose
 * every field is bounded, or throw a MessageFormatError, and nothing else
 * (issue #14: one message with a time past the year 275760 threw a
 * RangeError inside the consumer and stopped it).
 */

const NOW = Date.UTC(2026, 11, 3, 12);
const MAX_OUTPUT = 4096;
const limits = { now: NOW, maxOutputBytes: MAX_OUTPUT };

/** Values chosen to sit on or past every bound, beside arbitrary JSON. */
const edgy = fc.oneof(
  fc.constantFrom(
    1e13,
    -1,
    0,
    2 ** 31,
    2 ** 31 - 1,
    -(2 ** 31) - 1,
    2 ** 53,
    1e300,
    -1e300,
    0.5,
    '99999999999999',
    '1e13',
    '9999-12-31T23:59:59Z',
    '0000-01-01T00:00:00Z',
    '1999-12-31T23:59:59Z',
    '2024-02-30T00:00:00Z',
    '2024-01-01 12:00:00.123456',
    '275760-09-13T00:00:00Z',
    '',
    ' ',
    null,
    true,
    [],
    {},
    'A'.repeat(300),
    '\ud83d'.repeat(300),
    '😀'.repeat(70_000),
    "'".repeat(70_000),
  ),
  fc.jsonValue(),
  fc.string({ maxLength: 400 }),
  fc.double(),
  fc.integer(),
);

function validTime(iso: string): boolean {
  const d = new Date(iso);
  const t = d.getTime();
  return (
    Number.isFinite(t) &&
    d.toISOString() === iso &&
    t >= EARLIEST_TIME_MS &&
    t <= NOW + MAX_AHEAD_MS
  );
}

function assertBoundedResult(r: ResultMessage): void {
  assert.ok(Number.isInteger(r.job_id) && r.job_id >= 1 && r.job_id <= INT32_MAX, 'job_id');
  assert.match(r.run_id, /^[0-9a-f]{32}$/);
  assert.ok(RESULT_TYPES.includes(r.type), 'type');
  assert.ok(validTime(r['x-send-datetime']), `x-send-datetime ${r['x-send-datetime']}`);
  if (r.start_time !== undefined) assert.ok(validTime(r.start_time), `start_time ${r.start_time}`);
  assert.ok(typeof r['x-host'] === 'string' && r['x-host'].length <= 255, 'x-host');
  if (r.return_code !== undefined && r.return_code !== null)
    assert.ok(
      Number.isInteger(r.return_code) && r.return_code >= INT32_MIN && r.return_code <= INT32_MAX,
      'return_code',
    );
  if (r.run_time !== undefined)
    assert.ok(Number.isFinite(r.run_time) && r.run_time >= 0 && r.run_time <= MAX_SECONDS);
  if (r.status !== undefined) assert.ok(['succeeded', 'failed', 'timed_out'].includes(r.status));
  if (r.output !== undefined) assert.ok(Buffer.byteLength(r.output) <= MAX_OUTPUT, 'output');
  if (r.reason !== undefined) assert.ok(r.reason.length <= 1024, 'reason');
  if (r.name !== undefined) assert.ok([...r.name].length <= 255 && r.name !== '', 'name');
  const known = new Set([
    'job_id',
    'run_id',
    'type',
    'x-send-datetime',
    'x-host',
    'return_code',
    'run_time',
    'start_time',
    'status',
    'output',
    'reason',
    'name',
  ]);
  for (const k of Object.keys(r)) assert.ok(known.has(k), `no field ${k}`);
}

function assertBoundedJob(j: JobToRun): void {
  assert.ok(Number.isInteger(j.jobId) && j.jobId >= 1 && j.jobId <= INT32_MAX, 'jobId');
  assert.match(j.runId, /^[0-9a-f]{32}$/);
  assert.ok(j.name.length >= 1 && [...j.name].length <= 255, 'name');
  assert.ok(j.command.trim() !== '' && Buffer.byteLength(j.command) <= COMMAND_MAX_BYTES);
  if (j.timeoutSeconds !== null)
    assert.ok(
      Number.isFinite(j.timeoutSeconds) && j.timeoutSeconds > 0 && j.timeoutSeconds <= MAX_SECONDS,
    );
  if (j.scheduledFor !== null) assert.ok(validTime(j.scheduledFor), 'scheduledFor');
  if (j.notBefore !== null)
    assert.ok(Number.isFinite(j.notBefore) && j.notBefore <= NOW + MAX_AHEAD_MS, 'notBefore');
}

/** Parse, and hold the parser to its contract: a bounded value or a MessageFormatError. */
function check<T>(parse: () => T, assertBounded: (v: T) => void): void {
  let value: T;
  try {
    value = parse();
  } catch (err) {
    assert.ok(err instanceof MessageFormatError, `threw ${String(err)}`);
    assert.ok((err as Error).message.length <= 200, 'a short reason');
    return;
  }
  assertBounded(value);
}

const validResult = {
  job_id: 7,
  run_id: '0123456789abcdef0123456789abcdef',
  type: 'finished',
  return_code: 0,
  run_time: 1.5,
  start_time: '2026-12-03T11:59:00.000Z',
  'x-send-datetime': '2026-12-03T12:00:00.000Z',
  'x-host': 'host-a.example.com',
  status: 'succeeded',
  output: 'done\n',
  reason: 'ok',
  name: 'nightly',
};

const validJob = {
  run_id: '0123456789abcdef0123456789abcdef',
  job_id: 7,
  id: 7,
  name: 'nightly',
  cmd: 'echo hi',
  command: 'echo hi',
  timeout: 30,
  scheduled_for: '2026-12-03T12:00:00.000Z',
  trigger: 'schedule',
};

const body = (o: unknown) => Buffer.from(JSON.stringify(o) ?? 'undefined');

describe('message parsers take any input', () => {
  test('a valid result message and a valid job message parse', () => {
    assertBoundedResult(parseResultMessage(body(validResult), limits));
    assertBoundedJob(parseJobMessage(body(validJob), limits));
  });

  test('the poison results of issue #14 are a MessageFormatError naming the field', () => {
    for (const [field, value] of [
      ['x-send-datetime', 1e13],
      ['start_time', '99999999999999'],
      ['x-send-datetime', '9999-12-31T23:59:59Z'],
      ['return_code', 2 ** 40],
      ['run_time', 1e300],
      ['job_id', 2 ** 40],
    ] as const) {
      assert.throws(
        () => parseResultMessage(body({ ...validResult, [field]: value }), limits),
        (err: unknown) => err instanceof MessageFormatError && err.message.includes(field),
        field,
      );
    }
  });

  test('output is cut to its tail, names and hosts to their columns', () => {
    const r = parseResultMessage(
      body({
        ...validResult,
        output: `${'x'.repeat(10_000)}END`,
        name: 'é'.repeat(1000),
        'x-host': 'h'.repeat(1000),
      }),
      limits,
    );
    assert.equal(Buffer.byteLength(r.output!), MAX_OUTPUT);
    assert.ok(r.output!.endsWith('xEND'));
    assert.equal(r.name, 'é'.repeat(255));
    assert.equal(r['x-host'], 'h'.repeat(255));
  });

  test('arbitrary JSON: both parsers return a bounded value or a MessageFormatError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.string(), edgy), (v) => {
        const b = typeof v === 'string' && v.length % 2 === 0 ? Buffer.from(v) : body(v);
        check(() => parseResultMessage(b, limits), assertBoundedResult);
        check(() => parseJobMessage(b, limits), assertBoundedJob);
      }),
      { numRuns: 2000 },
    );
  });

  test('any value in any field of a valid result message: bounded or a MessageFormatError', () => {
    const fields = Object.keys(validResult);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...fields), edgy), { minLength: 1, maxLength: 4 }),
        (changes) => {
          const m: Record<string, unknown> = { ...validResult };
          for (const [k, v] of changes) m[k] = v;
          check(() => parseResultMessage(body(m), limits), assertBoundedResult);
        },
      ),
      { numRuns: 3000 },
    );
  });

  test('any value in any field of a valid job message: bounded or a MessageFormatError', () => {
    const fields = Object.keys(validJob);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...fields), edgy), { minLength: 1, maxLength: 4 }),
        (changes) => {
          const m: Record<string, unknown> = { ...validJob };
          for (const [k, v] of changes) m[k] = v;
          check(() => parseJobMessage(body(m), limits), assertBoundedJob);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
