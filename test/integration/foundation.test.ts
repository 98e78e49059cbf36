/**
 * The foundation against the real services: migrations on an empty
 * database and on a database that already holds the original Python
 * cronq's tables and rows, migrations run twice and concurrently, and the
 * AMQP connection surviving a broker-side close of its connection.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createTestDatabase,
  createTestVhost,
  rabbitmqctl,
  waitFor,
  uniqueName,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';
import { createDb, migrate, type Knex } from '../../src/core/db';
import { parseAmqpUrl, parseDatabaseUrl } from '../../src/core/config';
import { AmqpConnection, ConfirmPublisher } from '../../src/core/amqp';
import { declareCore, declareJobQueue, EXCHANGE } from '../../src/core/topology';
import { silentLogger } from '../../src/core/logger';

async function columns(
  db: Knex,
  table: string,
): Promise<Map<string, { type: string; nullable: boolean }>> {
  const [rows] = (await db.raw(
    'SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, IS_NULLABLE AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
    [table],
  )) as [Array<{ name: string; type: string; n: string }>];
  return new Map(
    rows.map((r) => [r.name, { type: r.type.toLowerCase(), nullable: r.n === 'YES' }]),
  );
}

async function tables(db: Knex): Promise<string[]> {
  const [rows] = (await db.raw(
    'SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1',
  )) as [Array<{ t: string }>];
  return rows.map((r) => r.t);
}

async function indexNames(db: Knex, table: string): Promise<Set<string>> {
  const [rows] = (await db.raw(`SHOW INDEX FROM \`${table}\``)) as [Array<{ Key_name: string }>];
  return new Set(rows.map((r) => r.Key_name));
}

const NEW_JOB_COLUMNS = [
  'schedule',
  'timeout',
  'description',
  'ended_at',
  'schedule_error',
  'current_run_for',
  'last_result_for',
];

describe('migrations', () => {
  const dbs: TestDatabase[] = [];
  after(async () => {
    for (const d of dbs) await d.drop();
  });

  test('on an empty database they create the original three tables, runs, and every new column and index', async () => {
    const t = await createTestDatabase({ migrated: false });
    dbs.push(t);
    assert.deepEqual(await tables(t.db), []);
    const applied = await migrate(t.db);
    assert.ok(applied.length >= 4, `applied ${applied.join(', ')}`);
    const have = await tables(t.db);
    for (const name of [
      'categories',
      'jobs',
      'events',
      'runs',
      'knex_migrations',
      'knex_migrations_lock',
    ])
      assert.ok(have.includes(name), name);
    const jobs = await columns(t.db, 'jobs');
    for (const c of [
      'id',
      'name',
      'interval',
      'next_run',
      'last_run_start',
      'last_run_stop',
      'last_run_status',
      'current_status',
      'routing_key',
      'command',
      'run_now',
      'locked_by',
      'category_id',
      ...NEW_JOB_COLUMNS,
    ]) {
      assert.ok(jobs.has(c), `jobs.${c}`);
    }
    assert.equal(jobs.get('next_run')!.type, 'datetime(3)');
    assert.equal(jobs.get('id')!.type, 'int(11)');
    assert.ok((await columns(t.db, 'events')).has('message_key'));
    assert.ok((await indexNames(t.db, 'runs')).has('uniq_runs_job_occurrence'));
    assert.ok((await indexNames(t.db, 'events')).has('idx_events_job_id_id'));
  });

  test('on a database holding the original Python cronq schema and rows, every row is kept and the new columns and tables are added', async () => {
    const t = await createTestDatabase({ migrated: false });
    dbs.push(t);
    const db = t.db;
    // The tables as SQLAlchemy created them for cronq 0.27 on MySQL 5.x
    // (signed INT ids, Interval stored as DATETIME, latin1 by server default).
    await db.raw(`CREATE TABLE categories (
      id INTEGER NOT NULL AUTO_INCREMENT, name CHAR(255), PRIMARY KEY (id), UNIQUE (name)
    ) ENGINE=InnoDB DEFAULT CHARSET=latin1`);
    await db.raw(`CREATE TABLE jobs (
      id INTEGER NOT NULL AUTO_INCREMENT, name CHAR(255), \`interval\` DATETIME, next_run DATETIME,
      last_run_start DATETIME, last_run_stop DATETIME, last_run_status CHAR(32), current_status CHAR(32),
      routing_key CHAR(32), command TEXT, run_now INTEGER, locked_by CHAR(64), category_id INTEGER,
      PRIMARY KEY (id), CONSTRAINT unique_idx_category_id_name UNIQUE (category_id, name),
      FOREIGN KEY(category_id) REFERENCES categories (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=latin1`);
    await db.raw(`CREATE TABLE events (
      id INTEGER NOT NULL AUTO_INCREMENT, job_id INTEGER, datetime DATETIME, run_id CHAR(32),
      type CHAR(32), host CHAR(255), return_code INTEGER,
      PRIMARY KEY (id), FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE CASCADE
    ) ENGINE=InnoDB DEFAULT CHARSET=latin1`);
    await db.raw("INSERT INTO categories (id, name) VALUES (1, 'example'), (2, 'reports')");
    await db.raw(`INSERT INTO jobs (id, name, \`interval\`, next_run, last_run_start, last_run_stop, last_run_status, current_status, routing_key, command, run_now, locked_by, category_id) VALUES
      (1, 'Test Job', '1970-01-01 00:01:00', '2013-05-29 00:05:00', '2013-05-29 00:04:00', '2013-05-29 00:04:10', 'succeeded', 'none', 'slow', 'sleep 10', 0, 'web1.1234', 1),
      (2, 'Nightly', '1970-01-02 00:00:00', '2013-05-30 02:00:00', NULL, NULL, NULL, NULL, 'default', 'echo nightly', 1, NULL, 2)`);
    await db.raw(`INSERT INTO events (id, job_id, datetime, run_id, type, host, return_code) VALUES
      (1, 1, '2013-05-29 00:04:00', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'starting', 'runner1.example', NULL),
      (2, 1, '2013-05-29 00:04:10', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'finished', 'runner1.example', 0),
      (3, 2, '2013-05-29 02:00:00', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'failed', 'runner2.example', NULL)`);
    const before = {
      categories: await db('categories').orderBy('id'),
      jobs: await db('jobs').orderBy('id'),
      events: await db('events').orderBy('id'),
    };

    await migrate(db);

    assert.deepEqual(await db('categories').select('id', 'name').orderBy('id'), before.categories);
    const jobsAfter = (await db('jobs').orderBy('id')) as Array<Record<string, unknown>>;
    assert.equal(jobsAfter.length, 2);
    jobsAfter.forEach((row, i) => {
      for (const [k, v] of Object.entries(before.jobs[i] as Record<string, unknown>))
        assert.deepEqual(row[k], v, `jobs[${i}].${k}`);
      for (const c of NEW_JOB_COLUMNS)
        assert.equal(row[c], null, `new column jobs.${c} is NULL for an adopted row`);
    });
    assert.equal((jobsAfter[0]!.interval as Date).toISOString(), '1970-01-01T00:01:00.000Z');
    const eventsAfter = (await db('events').orderBy('id')) as Array<Record<string, unknown>>;
    assert.equal(eventsAfter.length, 3);
    eventsAfter.forEach((row, i) => {
      for (const [k, v] of Object.entries(before.events[i] as Record<string, unknown>))
        assert.deepEqual(row[k], v, `events[${i}].${k}`);
      assert.equal(row.message_key, null);
    });
    assert.ok((await tables(db)).includes('runs'));
    const jobCols = await columns(db, 'jobs');
    for (const c of NEW_JOB_COLUMNS)
      assert.ok(jobCols.get(c)?.nullable, `jobs.${c} added, nullable`);
    assert.equal(jobCols.get('next_run')!.type, 'datetime(3)');
    assert.equal(
      jobCols.get('interval')!.type,
      'datetime',
      'the original interval column is left as it was',
    );
    // The original's ids stay signed INTs and auto-increment continues after them.
    const [ins] = (await db('events').insert({
      job_id: 1,
      type: 'starting',
      datetime: new Date(),
    })) as [number];
    assert.equal(ins, 4);
  });

  test('running migrate twice changes nothing the second time', async () => {
    const t = await createTestDatabase();
    dbs.push(t);
    await t.db('categories').insert({ id: 1, name: 'kept' });
    const again = await migrate(t.db);
    assert.deepEqual(again, []);
    assert.deepEqual(await t.db('categories').select('name'), [{ name: 'kept' }]);
  });

  test('four processes migrating one empty database at once all succeed and apply each migration once', async () => {
    const t = await createTestDatabase({ migrated: false });
    dbs.push(t);
    const cfg = parseDatabaseUrl(t.url);
    const clients = Array.from({ length: 4 }, () => createDb(cfg, { poolMax: 2 }));
    try {
      const results = await Promise.all(clients.map((c) => migrate(c)));
      const appliedTotal = results.flat();
      assert.equal(new Set(appliedTotal).size, appliedTotal.length, 'no migration applied twice');
      const [rows] = (await t.db.raw(
        'SELECT name, COUNT(*) AS n FROM knex_migrations GROUP BY name HAVING n > 1',
      )) as [unknown[]];
      assert.deepEqual(rows, []);
      assert.ok((await tables(t.db)).includes('runs'));
    } finally {
      await Promise.all(clients.map((c) => c.destroy()));
    }
  });
});

describe('AMQP connection', () => {
  let vhost: TestVhost;
  before(async () => {
    vhost = await createTestVhost();
  });
  after(async () => {
    await vhost?.drop();
  });

  async function brokerConnectionsOf(name: string): Promise<string[]> {
    const out = await rabbitmqctl(
      'list_connections',
      '-q',
      '--no-table-headers',
      'pid',
      'vhost',
      'client_properties',
    );
    return out
      .split('\n')
      .filter((l) => l.includes(`\t${vhost.vhost}\t`) && l.includes(name))
      .map((l) => l.split('\t')[0]!);
  }

  test('a publish is confirmed per message: an unroutable one says so, and the same message id in flight twice confirms both', async () => {
    const conn = new AmqpConnection(parseAmqpUrl(vhost.url), {
      logger: silentLogger(),
      name: uniqueName('confirms'),
    });
    const publisher = new ConfirmPublisher(conn, silentLogger());
    await conn.onConnect(async (c) => {
      const ch = await c.createChannel();
      await declareJobQueue(ch, 'confirm_jobs');
      await ch.close();
    });
    try {
      conn.start();
      const [a, b, lost] = await Promise.all([
        publisher.publish(EXCHANGE, 'confirm_jobs', Buffer.from('a'), {
          messageId: 'same-id',
          mandatory: true,
        }),
        publisher.publish(EXCHANGE, 'confirm_jobs', Buffer.from('b'), {
          messageId: 'same-id',
          mandatory: true,
        }),
        publisher.publish(EXCHANGE, 'no_such_queue', Buffer.from('c'), {
          messageId: 'same-id',
          mandatory: true,
        }),
      ]);
      assert.deepEqual([a, b, lost], [{ routed: true }, { routed: true }, { routed: false }]);
      assert.equal(publisher.inFlight, 0);
    } finally {
      await publisher.close();
      await conn.close();
    }
  });

  test('after the broker closes the connection, it reconnects, re-runs its setup, and the next publish arrives', async () => {
    const name = uniqueName('foundation');
    const conn = new AmqpConnection(parseAmqpUrl(vhost.url), { logger: silentLogger(), name });
    const publisher = new ConfirmPublisher(conn, silentLogger());
    let setups = 0;
    await conn.onConnect(async (c) => {
      const ch = await c.createChannel();
      await declareCore(ch);
      await declareJobQueue(ch, 'foundation_jobs');
      await ch.close();
      setups += 1;
    });
    const observer = await vhost.connect();
    const look = await observer.createChannel();
    try {
      conn.start();
      await conn.connection();
      assert.deepEqual(await publisher.publish(EXCHANGE, 'foundation_jobs', Buffer.from('one')), {
        routed: true,
      });
      const first = await waitFor(
        async () => (await look.get('foundation_jobs', { noAck: true })) || null,
        {
          message: 'first message',
        },
      );
      assert.equal(first.content.toString(), 'one');

      const pids = await waitFor(
        async () => {
          const p = await brokerConnectionsOf(name);
          return p.length === 1 ? p : null;
        },
        { message: 'the connection is listed by rabbitmqctl' },
      );
      const disconnected = new Promise((r) => conn.once('disconnected', r));
      await rabbitmqctl('close_connection', pids[0]!, 'foundation test closes it');
      await disconnected;
      await waitFor(() => conn.connectCount === 2 && conn.isConnected, {
        timeoutMs: 20_000,
        message: 'reconnected',
      });
      assert.equal(setups, 2, 'setup ran again on the new connection');

      const r = await waitFor(
        async () => {
          try {
            return await publisher.publish(EXCHANGE, 'foundation_jobs', Buffer.from('two'));
          } catch {
            return null; // the old channel may still be draining; try again
          }
        },
        { timeoutMs: 20_000, message: 'publish after reconnect' },
      );
      assert.deepEqual(r, { routed: true });
      const second = await waitFor(
        async () => (await look.get('foundation_jobs', { noAck: true })) || null,
        {
          message: 'second message',
        },
      );
      assert.equal(second.content.toString(), 'two');
    } finally {
      await publisher.close();
      await conn.close();
    }
  });

  test('a publish to a routing key with no queue resolves as not routed', async () => {
    const conn = new AmqpConnection(parseAmqpUrl(vhost.url), {
      logger: silentLogger(),
      name: uniqueName('foundation'),
    });
    const publisher = new ConfirmPublisher(conn, silentLogger());
    try {
      await conn.onConnect(async (c) => {
        const ch = await c.createChannel();
        await declareCore(ch);
        await ch.close();
      });
      conn.start();
      assert.deepEqual(
        await publisher.publish(EXCHANGE, 'nobody_listens', Buffer.from('x'), { mandatory: true }),
        { routed: false },
      );
    } finally {
      await publisher.close();
      await conn.close();
    }
  });
});
