/**
 * migrateWhenReachable: a database that is not up yet is waited for (one
 * warning), a signal ends the wait, any other error is thrown, and
 * waitForDatabase: false (cronq-web) makes one attempt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Knex } from '../../src/core/db';
import { migrateWhenReachable } from '../../src/core/migrate';

function failingDb(make: () => Error): { db: Knex; attempts: () => number } {
  let n = 0;
  const db = {
    raw: async () => {
      n += 1;
      throw make();
    },
  } as unknown as Knex;
  return { db, attempts: () => n };
}

const refused = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

function capture() {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { lines, logger };
}

test('an unreachable database is waited for with one warning until the signal ends the wait', async () => {
  const { db, attempts } = failingDb(refused);
  const { lines, logger } = capture();
  const abort = new AbortController();
  const done = migrateWhenReachable(db, { logger, signal: abort.signal });
  await new Promise((r) => setTimeout(r, 1200));
  abort.abort();
  assert.equal(await done, false);
  assert.ok(attempts() >= 2, `retried (${attempts()} attempts)`);
  assert.equal(lines.filter((l) => l.level === 40).length, 1, 'one warning');
});

test('an error a retry cannot cure is thrown at once', async () => {
  const { db, attempts } = failingDb(() =>
    Object.assign(new Error('Access denied'), { code: 'ER_ACCESS_DENIED_ERROR' }),
  );
  await assert.rejects(
    migrateWhenReachable(db, { logger: capture().logger, signal: new AbortController().signal }),
    /Access denied/,
  );
  assert.equal(attempts(), 1);
});

test('waitForDatabase: false makes one attempt and throws even a transient error', async () => {
  const { db, attempts } = failingDb(refused);
  await assert.rejects(
    migrateWhenReachable(db, {
      logger: capture().logger,
      signal: new AbortController().signal,
      waitForDatabase: false,
    }),
    /ECONNREFUSED/,
  );
  assert.equal(attempts(), 1);
});
