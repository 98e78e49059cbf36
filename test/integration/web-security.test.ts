import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/services';
import { dumpTables, startTestWeb, type TestWeb } from '../helpers/web';
import { runCommand, startCommand } from '../helpers/processes';

const TOKEN = 'sekrit-token-0123456789';
let tdb: TestDatabase;
let open: TestWeb; // no token (loopback)
let locked: TestWeb; // with CRONQ_API_TOKEN
let jobId: number;

const basic = (user: string, pass: string) =>
  `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

before(async () => {
  tdb = await createTestDatabase();
  open = await startTestWeb(tdb.db, tdb.url);
  locked = await startTestWeb(tdb.db, tdb.url, { CRONQ_API_TOKEN: TOKEN });
  const res = await fetch(`${open.url}/api/category/sec`, {
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
  await tdb?.drop();
});

async function csrfTokenOf(base: string, headers: Record<string, string> = {}): Promise<string> {
  const html = await (await fetch(`${base}/job/${jobId}`, { headers })).text();
  return /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
}

describe('with CRONQ_API_TOKEN set', () => {
  test('pages and API without credentials answer 401 with WWW-Authenticate: Basic', async () => {
    for (const path of [
      '/',
      `/job/${jobId}`,
      '/failures',
      '/api/jobs',
      '/api/categories',
      '/static/style.css',
    ]) {
      const res = await fetch(`${locked.url}${path}`);
      assert.equal(res.status, 401, path);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /, path);
    }
    const write = await fetch(`${locked.url}/api/jobs/${jobId}/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(write.status, 401);
    assert.equal((await tdb.db('jobs').where('id', jobId).first()).run_now, 0);
  });

  test('a wrong token answers 401, as Bearer and as Basic', async () => {
    for (const auth of [
      'Bearer wrong-token-xxxxxxxx',
      `Bearer ${TOKEN}x`,
      basic('admin', 'nope'),
      'Token abc',
    ]) {
      const res = await fetch(`${locked.url}/api/jobs`, { headers: { authorization: auth } });
      assert.equal(res.status, 401, auth);
    }
    const before = await dumpTables(tdb.db);
    const put = await fetch(`${locked.url}/api/category/sec`, {
      method: 'PUT',
      headers: { authorization: 'Bearer nope-nope-nope', 'content-type': 'application/json' },
      body: JSON.stringify({ jobs: [] }),
    });
    assert.equal(put.status, 401);
    assert.equal(await dumpTables(tdb.db), before, 'an unauthorised write changes nothing');
  });

  test('Bearer and Basic (the token as password, any user) are accepted', async () => {
    assert.equal(
      (await fetch(`${locked.url}/api/jobs`, { headers: { authorization: `Bearer ${TOKEN}` } }))
        .status,
      200,
    );
    assert.equal(
      (await fetch(`${locked.url}/`, { headers: { authorization: basic('anyone', TOKEN) } }))
        .status,
      200,
    );
    assert.equal(
      (
        await fetch(`${locked.url}/static/live.js`, {
          headers: { authorization: basic('', TOKEN) },
        })
      ).status,
      200,
    );
  });

  test('/_status stays open', async () => {
    const res = await fetch(`${locked.url}/_status`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'OK' });
  });

  test('an API write with a Bearer token needs no CSRF token or JSON content type', async () => {
    const res = await fetch(`${locked.url}/api/jobs/${jobId}/run`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(res.status, 200);
    assert.equal((await tdb.db('jobs').where('id', jobId).first()).run_now, 1);
    await tdb.db('jobs').where('id', jobId).update({ run_now: 0 });
  });

  test('a browser signed in with Basic still needs the CSRF token for a form POST', async () => {
    const auth = basic('me', TOKEN);
    const refused = await fetch(`${locked.url}/job/${jobId}/run`, {
      method: 'POST',
      redirect: 'manual',
      headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    assert.equal(refused.status, 403);
    const token = await csrfTokenOf(locked.url, { authorization: auth });
    const ok = await fetch(`${locked.url}/job/${jobId}/run`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        authorization: auth,
        'content-type': 'application/x-www-form-urlencoded',
        origin: locked.url,
      },
      body: `_csrf=${encodeURIComponent(token)}`,
    });
    assert.equal(ok.status, 303);
    assert.equal((await tdb.db('jobs').where('id', jobId).first()).run_now, 1);
    await tdb.db('jobs').where('id', jobId).update({ run_now: 0 });
  });
});

describe('cross-site request forgery', () => {
  test('a form POST without the CSRF token is refused and changes nothing', async () => {
    const res = await fetch(`${open.url}/job/${jobId}/run`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '_csrf=forged.value',
    });
    assert.equal(res.status, 403);
    assert.equal((await tdb.db('jobs').where('id', jobId).first()).run_now, 0);
  });

  test('a form POST with a valid token but a foreign Origin is refused', async () => {
    const token = await csrfTokenOf(open.url);
    const res = await fetch(`${open.url}/job/${jobId}/run`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: 'https://evil.example',
      },
      body: `_csrf=${encodeURIComponent(token)}`,
    });
    assert.equal(res.status, 403);
    const viaReferer = await fetch(`${open.url}/job/${jobId}/run`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        referer: 'https://evil.example/page',
      },
      body: `_csrf=${encodeURIComponent(token)}`,
    });
    assert.equal(viaReferer.status, 403);
    assert.equal((await tdb.db('jobs').where('id', jobId).first()).run_now, 0);
  });

  test('a same-origin form POST with the token queues the run and redirects back to the job', async () => {
    const token = await csrfTokenOf(open.url);
    const res = await fetch(`${open.url}/job/${jobId}/run`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: open.url },
      body: `_csrf=${encodeURIComponent(token)}`,
    });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), `/job/${jobId}?queued=1`);
    assert.equal((await tdb.db('jobs').where('id', jobId).first()).run_now, 1);
    await tdb.db('jobs').where('id', jobId).update({ run_now: 0 });
  });

  test('an API write without a Bearer token must be application/json and same-origin', async () => {
    const form = await fetch(`${open.url}/api/jobs/${jobId}/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'x=1',
    });
    assert.equal(form.status, 415);
    const foreign = await fetch(`${open.url}/api/jobs/${jobId}/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
    });
    assert.equal(foreign.status, 403);
    const before = await dumpTables(tdb.db);
    const put = await fetch(`${open.url}/api/category/sec`, {
      method: 'PUT',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ jobs: [] }),
    });
    assert.equal(put.status, 415);
    assert.equal(await dumpTables(tdb.db), before);
    assert.equal((await tdb.db('jobs').where('id', jobId).first()).run_now, 0);
  });
});

describe('headers', () => {
  test('every answer carries CSP without inline script, nosniff, X-Frame-Options DENY and a Referrer-Policy', async () => {
    for (const path of ['/', '/api/jobs', '/no-such-page']) {
      const res = await fetch(`${open.url}${path}`);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'self'/, path);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.ok(res.headers.get('referrer-policy'));
    }
  });

  test('pages load no asset from another host', async () => {
    const html = await (await fetch(`${open.url}/job/${jobId}`)).text();
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
  });
});

describe('the cronq-web command', () => {
  test('a non-loopback --listen without a token refuses to start: exit 2 and a one-line reason', async () => {
    const r = await runCommand('cronq-web', {
      args: ['--listen', '0.0.0.0', '--port', '0'],
      env: { DATABASE_URL: tdb.url },
      timeoutMs: 20_000,
    });
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /CRONQ_API_TOKEN/);
    const viaEnv = await runCommand('cronq-web', {
      env: { DATABASE_URL: tdb.url, LISTEN_INTERFACE: '0.0.0.0', PORT: '0' },
      timeoutMs: 20_000,
    });
    assert.equal(viaEnv.code, 2);
  });

  test('--help lists the flags', async () => {
    const r = await runCommand('cronq-web', { args: ['--help'] });
    assert.equal(r.code, 0);
    for (const f of ['--port', '--listen', '--verbose', '--log-level'])
      assert.ok(r.stdout.includes(f), f);
  });

  test('with a token it serves on any interface, never logs the token, and stops cleanly on SIGTERM', async () => {
    const proc = startCommand('cronq-web', {
      args: ['--listen', '0.0.0.0', '--port', '0'],
      env: { DATABASE_URL: tdb.url, CRONQ_API_TOKEN: TOKEN },
    });
    try {
      const line = await proc.waitForLine('listening on', 20_000);
      const port = Number(/"port":(\d+)/.exec(line)![1]);
      const res = await fetch(`http://127.0.0.1:${port}/api/jobs`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(res.status, 200);
      assert.equal(
        (
          await fetch(`http://127.0.0.1:${port}/api/jobs`, {
            headers: { authorization: `Bearer ${TOKEN}-wrong` },
          })
        ).status,
        401,
      );
      const exit = await proc.stop();
      assert.equal(exit.code, 0, proc.output());
      assert.ok(!proc.output().includes(TOKEN), 'the token must not appear in the log');
      assert.ok(
        !/authorization/i.test(proc.output()),
        'the Authorization header must not appear in the log',
      );
    } finally {
      proc.kill('SIGKILL');
    }
  });

  test('without a token it says in its log that it listens on loopback only', async () => {
    const proc = startCommand('cronq-web', {
      args: ['--port', '0'],
      env: { DATABASE_URL: tdb.url },
    });
    try {
      await proc.waitForLine('loopback only', 20_000);
      assert.equal((await proc.stop()).code, 0);
    } finally {
      proc.kill('SIGKILL');
    }
  });
});
