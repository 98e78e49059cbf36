/**
 * Every command as a real process: `--help` of each executable and of each
 * `cronq <command>`, the umbrella's usage, unknown commands and flags, and
 * a bad setting ending in exit 2 with one line and no stack trace, and a
 * daemon started before its database.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { runCommand, startCommand, ROOT } from '../helpers/processes';

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
};
const EXECUTABLES = Object.keys(pkg.bin).filter((b) => b !== 'cronq');
const SUBCOMMANDS = ['injector', 'runner', 'results', 'web', 'pruner', 'validator', 'apply', 'dev'];

describe('--help', () => {
  test('cronq --help lists every command and exits 0', async () => {
    for (const args of [['--help'], ['-h'], ['help'], []]) {
      const r = await runCommand('cronq', { args });
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /^Usage: cronq <command> \[options\]/);
      for (const c of SUBCOMMANDS) assert.match(r.stdout, new RegExp(`^  ${c}\\s+\\S`, 'm'), c);
    }
  });

  for (const exe of EXECUTABLES) {
    test(`${exe} --help prints its usage and exits 0`, async () => {
      const r = await runCommand(exe, { args: ['--help'] });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: ${exe} `));
      assert.equal(r.stderr, '');
    });
  }

  for (const sub of SUBCOMMANDS) {
    test(`cronq ${sub} --help prints the same usage as its executable and exits 0`, async () => {
      const r = await runCommand('cronq', { args: [sub, '--help'] });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage: cronq[- ]/);
      assert.match(r.stdout, /-h, --help/);
    });
  }
});

describe('bad usage', () => {
  test('an unknown command: exit 2, names it, prints the usage', async () => {
    const r = await runCommand('cronq', { args: ['frobnicate'] });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^cronq: unknown command "frobnicate"\nUsage: cronq <command>/);
  });

  for (const exe of EXECUTABLES) {
    test(`${exe} with an unknown flag exits 2 naming the flag`, async () => {
      const r = await runCommand(exe, { args: ['--no-such-flag'] });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /unknown option '--no-such-flag'/);
    });
  }
});

describe('a bad setting stops a command at start: exit 2, one line naming the setting, no stack trace', () => {
  const cases: Array<{ exe: string; args?: string[]; env: Record<string, string>; line: RegExp }> =
    [
      {
        exe: 'cronq-injector',
        env: { DATABASE_URL: 'postgres://h/db' },
        line: /^cronq-injector: DATABASE_URL="postgres:\/\/h\/db" is not valid: expected mysql/,
      },
      {
        exe: 'cronq-results',
        env: { RABBITMQ_URL: 'http://mq/' },
        line: /^cronq-results: RABBITMQ_URL="http:\/\/mq\/" is not valid/,
      },
      {
        exe: 'cronq-runner',
        env: { CRONQ_CONCURRENCY: 'many' },
        line: /^cronq-runner: CRONQ_CONCURRENCY="many" is not valid: expected a whole number/,
      },
      {
        exe: 'cronq-runner',
        env: { RABBITMQ_URL: 'amqp://h/?heartbeat=often' },
        line: /^cronq-runner: RABBITMQ_URL=.* heartbeat/,
      },
      { exe: 'cronq-web', env: { PORT: '99999' }, line: /^cronq-web: PORT="99999" is not valid/ },
      {
        exe: 'cronq-web',
        env: { CRONQ_API_TOKEN: 'short' },
        line: /^cronq-web: CRONQ_API_TOKEN="\*\*\*" is not valid: expected a secret of at least 8 characters/,
      },
      {
        exe: 'cronq-pruner',
        args: ['--keep', '5'],
        env: { CRONQ_MYSQL: 'mysql://h/' },
        line: /^cronq-pruner: CRONQ_MYSQL="mysql:\/\/h\/" is not valid/,
      },
      {
        exe: 'cronq-injector',
        env: { CRONQ_LOG_LEVEL: 'chatty' },
        line: /^cronq-injector: CRONQ_LOG_LEVEL="chatty" is not valid/,
      },
    ];
  for (const c of cases) {
    test(`${c.exe} with ${Object.entries(c.env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`, async () => {
      const r = await runCommand(c.exe, { args: c.args ?? [], env: c.env, timeoutMs: 15_000 });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, c.line);
      assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
    });
  }

  test('--verbose adds the stack trace', async () => {
    const r = await runCommand('cronq-web', { args: ['--verbose'], env: { PORT: 'x' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\n\s+at /);
  });
});

describe('a daemon started before its database (core/daemon + core/migrate)', () => {
  // Nothing listens on port 1: every connection is refused at once.
  const NO_DATABASE = 'mysql://root@127.0.0.1:1/cronq_nowhere';
  const NO_BROKER = 'amqp://guest:guest@127.0.0.1:1/';

  for (const exe of ['cronq-injector', 'cronq-results']) {
    test(`${exe} waits for it with one warning, and SIGTERM ends the wait: exit 0`, async () => {
      const p = startCommand(exe, {
        env: { DATABASE_URL: NO_DATABASE, RABBITMQ_URL: NO_BROKER, CRONQ_LOG_LEVEL: 'info' },
      });
      try {
        await p.waitForLine('database unavailable; waiting for it');
        const exit = await p.stop();
        assert.deepEqual(exit, { code: 0, signal: null }, p.output().slice(-2000));
        assert.equal(
          p.lines().filter((l) => l.includes('database unavailable')).length,
          1,
          'one warning',
        );
      } finally {
        p.kill('SIGKILL');
      }
    });
  }

  test('a part that cannot start (cronq-web on a port in use) stops what had begun: exit 1, one line', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    try {
      const port = (taken.address() as net.AddressInfo).port;
      const r = await runCommand('cronq-web', {
        env: { DATABASE_URL: NO_DATABASE, PORT: String(port), CRONQ_LOG_LEVEL: 'silent' },
        timeoutMs: 30_000,
      });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        /^cronq-web: listen EADDRINUSE: address already in use 127\.0\.0\.1:\d+\n$/,
      );
    } finally {
      taken.close();
    }
  });

  test('cronq-web serves anyway: /_status answers 503, and SIGTERM exits 0', async () => {
    const p = startCommand('cronq-web', {
      env: { DATABASE_URL: NO_DATABASE, PORT: '0', CRONQ_LOG_LEVEL: 'info' },
    });
    try {
      await p.waitForLine('could not migrate the database; serving anyway');
      const listening = await p.waitForLine('listening on http://');
      const port = Number(/"port":(\d+)/.exec(listening)?.[1]);
      const res = await fetch(`http://127.0.0.1:${port}/_status`);
      assert.equal(res.status, 503);
      const exit = await p.stop();
      assert.deepEqual(exit, { code: 0, signal: null }, p.output().slice(-2000));
    } finally {
      p.kill('SIGKILL');
    }
  });
});
