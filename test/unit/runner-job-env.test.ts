import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadConfig } from '../../src/core/config';
import { ConfigError } from '../../src/core/errors';
import { MAX_TIMEOUT_SECONDS, parseJobMessage } from '../../src/core/messages';
import { envValue, jobBaseEnv, MAX_ENV_NAME_CHARS, runEnv } from '../../src/runner/job-env';

const RUN = '0123456789abcdef0123456789abcdef';

describe("a job's environment", () => {
  const runnerEnv = {
    PATH: '/usr/bin:/bin',
    HOME: '/home/cronq',
    TZ: 'UTC',
    RABBITMQ_URL: 'amqp://u:secret@h/',
    RABBITMQ_HOST: 'h',
    RABBITMQ_USER: 'u',
    RABBITMQ_PASS: 'secret',
    DATABASE_URL: 'mysql://u:secret@h/db',
    CRONQ_MYSQL: 'mysql://u:secret@h/db',
    CRONQ_API_TOKEN: 'secret-token',
    CRONQ_SMTP_URL: 'smtp://u:secret@h',
    CRONQ_JOB_ID: 'forged',
    LOG_PATH: '/var/log/cronq',
    LOG_LEVEL: 'debug',
    PORT: '5000',
    LISTEN_INTERFACE: '0.0.0.0',
    CRONQ_APP_X: 'x',
  };

  test("CronQ's settings are removed, everything else passes", () => {
    assert.deepEqual(jobBaseEnv(runnerEnv, []), {
      PATH: '/usr/bin:/bin',
      HOME: '/home/cronq',
      TZ: 'UTC',
    });
  });

  test('the allow-list passes exact names and prefixes ending in *', () => {
    const env = jobBaseEnv(runnerEnv, ['LOG_PATH', 'CRONQ_APP_*']);
    assert.equal(env.LOG_PATH, '/var/log/cronq');
    assert.equal(env.CRONQ_APP_X, 'x');
    assert.equal(env.CRONQ_API_TOKEN, undefined);
    assert.equal(env.DATABASE_URL, undefined);
  });

  test('the run variables win over anything passed, are NUL-free and bounded', () => {
    const job = {
      runId: RUN,
      jobId: 7,
      name: `a\0b${'\u{1D518}'.repeat(2000)}`,
      command: 'true',
      timeoutSeconds: null,
      scheduledFor: '2026-01-02T03:04:05.678Z',
      notBefore: null,
    };
    const env = runEnv(job, new Date(0));
    assert.equal(env.CRONQ_JOB_ID, '7');
    assert.equal(env.CRONQ_RUN_ID, RUN);
    assert.equal(env.CRONQ_SCHEDULED_FOR, '2026-01-02T03:04:05.678Z');
    assert.ok(env.CRONQ_JOB_NAME!.startsWith('ab'));
    assert.ok(env.CRONQ_JOB_NAME!.length <= MAX_ENV_NAME_CHARS);
    // An odd cut would leave half a surrogate pair.
    assert.ok(!/[\uD800-\uDBFF]$/.test(env.CRONQ_JOB_NAME!));
    for (const bad of [null, 'not a time', '+999999-01-01T00:00:00Z'])
      assert.equal(
        runEnv({ ...job, scheduledFor: bad }, new Date(1000)).CRONQ_SCHEDULED_FOR,
        '1970-01-01T00:00:01.000Z',
      );
  });

  test('envValue never has a NUL and never passes its bound', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 3000 }), (s) => {
        const v = envValue(s);
        assert.ok(!v.includes('\0') && v.length <= MAX_ENV_NAME_CHARS);
      }),
    );
  });
});

describe('settings', () => {
  test('CRONQ_JOB_ENV_PASS: names and prefix globs; a bare * or a bad name is a ConfigError', () => {
    assert.deepEqual(loadConfig({}).runner.jobEnvPass, []);
    assert.deepEqual(
      loadConfig({ CRONQ_JOB_ENV_PASS: ' LOG_PATH, CRONQ_APP_* ,' }).runner.jobEnvPass,
      ['LOG_PATH', 'CRONQ_APP_*'],
    );
    for (const bad of ['*', 'A B', 'X=1', '1ABC', 'A*B'])
      assert.throws(() => loadConfig({ CRONQ_JOB_ENV_PASS: bad }), ConfigError, bad);
  });

  test('CRONQ_JOB_LOG_MAX_BYTES: default 10 MiB, 0 = never rotate', () => {
    assert.equal(loadConfig({}).runner.jobLogMaxBytes, 10 * 1024 * 1024);
    assert.equal(loadConfig({ CRONQ_JOB_LOG_MAX_BYTES: '0' }).runner.jobLogMaxBytes, 0);
    assert.throws(() => loadConfig({ CRONQ_JOB_LOG_MAX_BYTES: '-1' }), ConfigError);
    assert.throws(() => loadConfig({ CRONQ_JOB_LOG_MAX_BYTES: 'abc' }), ConfigError);
  });
});

describe('the timeout a job message may carry', () => {
  const msg = (timeout: unknown) =>
    JSON.stringify({ run_id: RUN, job_id: 1, cmd: 'true', timeout });

  test('seconds are kept as given up to MAX_TIMEOUT_SECONDS; 0, null and anything larger mean no limit', () => {
    assert.equal(parseJobMessage(msg(2592000)).timeoutSeconds, 2592000);
    assert.equal(parseJobMessage(msg(0.5)).timeoutSeconds, 0.5);
    assert.equal(parseJobMessage(msg(MAX_TIMEOUT_SECONDS)).timeoutSeconds, MAX_TIMEOUT_SECONDS);
    assert.equal(parseJobMessage(msg(0)).timeoutSeconds, null);
    assert.equal(parseJobMessage(msg(null)).timeoutSeconds, null);
    assert.equal(parseJobMessage(msg(1e300)).timeoutSeconds, null);
    // JSON reads 1e400 as Infinity.
    assert.equal(
      parseJobMessage(`{"run_id":"${RUN}","job_id":1,"cmd":"true","timeout":1e400}`).timeoutSeconds,
      null,
    );
  });

  test('a negative, a string or any other type is a malformed message', () => {
    for (const bad of [-1, -1e-9, 'abc', '30', true, [], {}])
      assert.throws(
        () => parseJobMessage(msg(bad)),
        /timeout must be a number of seconds/,
        String(bad),
      );
  });
});
