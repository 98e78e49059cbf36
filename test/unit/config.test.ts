/**
 * loadConfig: every setting's default, its environment variable, the URL
 * forms of the original (SQLAlchemy drivers, several AMQP hosts, heartbeat,
 * RABBITMQ_HOST/USER/PASS, CRONQ_MYSQL), and one ConfigError naming the
 * setting for each bad value.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import {
  describeConfig,
  isLoopback,
  loadConfig,
  parseAmqpUrl,
  parseDatabaseUrl,
} from '../../src/core/config';
import { redact } from '../../src/core/config-values';
import { ConfigError } from '../../src/core/errors';

function badSetting(env: Record<string, string>, setting: string, accepted?: RegExp): void {
  assert.throws(
    () => loadConfig(env),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.exitCode, 2);
      assert.ok(
        err.message.startsWith(`${setting}=`),
        `message should name ${setting}: ${err.message}`,
      );
      assert.ok(!err.message.includes('\n'), 'one line');
      if (accepted) assert.match(err.message, accepted);
      return true;
    },
  );
}

describe('defaults', () => {
  test('an empty environment gives the documented defaults', () => {
    const c = loadConfig({});
    assert.deepEqual(c.amqp.hosts, [{ hostname: 'localhost', port: 5672 }]);
    assert.equal(c.amqp.username, 'guest');
    assert.equal(c.amqp.password, 'guest');
    assert.equal(c.amqp.vhost, '/');
    assert.equal(c.amqp.heartbeat, undefined);
    assert.deepEqual(
      { ...c.database, params: { ...c.database.params } },
      { host: 'localhost', port: 3306, user: 'root', password: '', database: 'cronq', params: {} },
    );
    assert.deepEqual({ ...c.log }, { level: 'info', format: 'json' });
    assert.deepEqual(
      { ...c.injector },
      { maxPollMs: 1000, batchSize: 500, republishAfterMs: 30_000, leadMs: 500 },
    );
    assert.deepEqual(
      { ...c.runner },
      {
        queue: 'cronq_jobs',
        concurrency: 1,
        logToStdout: false,
        logPath: '/var/log/cronq',
        outputTailBytes: 65536,
        defaultTimeoutSeconds: 0,
        killGraceMs: 10_000,
        shutdownGraceMs: 30_000,
        heartbeatMs: 10_000,
        bufferPath: '',
        bufferMaxBytes: 256 * 1024 * 1024,
        jobEnvPass: [],
        jobLogMaxBytes: 10 * 1024 * 1024,
      },
    );
    assert.deepEqual({ ...c.results }, { prefetch: 500, lostAfterMs: 60_000, flushMs: 50 });
    assert.deepEqual(
      { ...c.web },
      {
        port: 5000,
        listenInterface: '127.0.0.1',
        apiToken: undefined,
        logUrlTemplate: undefined,
        bodyLimit: '1mb',
        allowedHosts: [],
        statusRatePerSecond: 10,
        clientConcurrency: 4,
      },
    );
    assert.equal(c.host, os.hostname());
  });

  test('the config is frozen all the way down', () => {
    const c = loadConfig({});
    assert.ok(
      Object.isFrozen(c) &&
        Object.isFrozen(c.amqp) &&
        Object.isFrozen(c.amqp.hosts) &&
        Object.isFrozen(c.amqp.hosts[0]) &&
        Object.isFrozen(c.runner),
    );
  });

  test('flag overrides win over the environment; undefined overrides do not erase it', () => {
    const c = loadConfig(
      { CRONQ_LOG_LEVEL: 'warn', CRONQ_QUEUE: 'env_q' },
      { CRONQ_LOG_LEVEL: 'debug', CRONQ_QUEUE: undefined },
    );
    assert.equal(c.log.level, 'debug');
    assert.equal(c.runner.queue, 'env_q');
  });
});

describe('every setting is read from its environment variable', () => {
  test('numbers, booleans and strings', () => {
    const c = loadConfig({
      CRONQ_QUEUE: 'slow',
      CRONQ_CONCURRENCY: '8',
      CRONQ_RUNNER_LOG_TO_STDOUT: 'yes',
      LOG_PATH: '/tmp/x',
      CRONQ_OUTPUT_TAIL_BYTES: '1024',
      CRONQ_DEFAULT_TIMEOUT_SECONDS: '90',
      CRONQ_KILL_GRACE_SECONDS: '2.5',
      CRONQ_SHUTDOWN_GRACE_SECONDS: '5',
      CRONQ_HEARTBEAT_SECONDS: '0.5',
      CRONQ_RESULT_BUFFER_PATH: '/tmp/buf',
      CRONQ_RESULT_BUFFER_MAX_BYTES: '4096',
      CRONQ_INJECTOR_MAX_POLL_MS: '250',
      CRONQ_INJECTOR_BATCH_SIZE: '50',
      CRONQ_INJECTOR_REPUBLISH_AFTER_MS: '5000',
      CRONQ_INJECTOR_LEAD_MS: '0',
      CRONQ_RESULTS_PREFETCH: '10',
      CRONQ_LOST_AFTER_SECONDS: '30',
      CRONQ_RESULTS_FLUSH_MS: '0',
      PORT: '8080',
      LISTEN_INTERFACE: '0.0.0.0',
      CRONQ_API_TOKEN: 'secret-token-1',
      CRONQ_LOG_URL_TEMPLATE: 'https://logs.example/search?q={run_id}',
      CRONQ_API_BODY_LIMIT: '512kb',
      CRONQ_ALLOWED_HOSTS: 'cronq.example.com,10.0.0.5:5000',
      CRONQ_STATUS_RATE: '50',
      CRONQ_WEB_CLIENT_CONCURRENCY: '8',
      CRONQ_LOG_LEVEL: 'DEBUG',
      CRONQ_LOG_FORMAT: 'pretty',
      CRONQ_HOSTNAME: 'runner-7.example',
    });
    assert.equal(c.runner.queue, 'slow');
    assert.equal(c.runner.concurrency, 8);
    assert.equal(c.runner.logToStdout, true);
    assert.equal(c.runner.logPath, '/tmp/x');
    assert.equal(c.runner.outputTailBytes, 1024);
    assert.equal(c.runner.defaultTimeoutSeconds, 90);
    assert.equal(c.runner.killGraceMs, 2500);
    assert.equal(c.runner.shutdownGraceMs, 5000);
    assert.equal(c.runner.heartbeatMs, 500);
    assert.equal(c.runner.bufferPath, '/tmp/buf');
    assert.equal(c.runner.bufferMaxBytes, 4096);
    assert.deepEqual(
      { ...c.injector },
      {
        maxPollMs: 250,
        batchSize: 50,
        republishAfterMs: 5000,
        leadMs: 0,
      },
    );
    assert.deepEqual({ ...c.results }, { prefetch: 10, lostAfterMs: 30_000, flushMs: 0 });
    assert.deepEqual(
      { ...c.web },
      {
        port: 8080,
        listenInterface: '0.0.0.0',
        apiToken: 'secret-token-1',
        logUrlTemplate: 'https://logs.example/search?q={run_id}',
        bodyLimit: '512kb',
        allowedHosts: ['cronq.example.com', '10.0.0.5:5000'],
        statusRatePerSecond: 50,
        clientConcurrency: 8,
      },
    );
    assert.deepEqual({ ...c.log }, { level: 'debug', format: 'pretty' });
    assert.equal(c.host, 'runner-7.example');
  });

  test('LOG_LEVEL is read when CRONQ_LOG_LEVEL is unset', () => {
    assert.equal(loadConfig({ LOG_LEVEL: 'error' }).log.level, 'error');
    assert.equal(loadConfig({ LOG_LEVEL: 'error', CRONQ_LOG_LEVEL: 'warn' }).log.level, 'warn');
  });

  test('each spelling of a boolean', () => {
    for (const v of ['1', 'true', 'YES', 'on'])
      assert.equal(loadConfig({ CRONQ_RUNNER_LOG_TO_STDOUT: v }).runner.logToStdout, true, v);
    for (const v of ['', '0', 'false', 'No', 'off'])
      assert.equal(loadConfig({ CRONQ_RUNNER_LOG_TO_STDOUT: v }).runner.logToStdout, false, v);
  });

  test('blank numbers mean the default', () => {
    assert.equal(loadConfig({ CRONQ_CONCURRENCY: ' ', PORT: '' }).runner.concurrency, 1);
    assert.equal(loadConfig({ PORT: '' }).web.port, 5000);
  });

  test('an empty CRONQ_API_TOKEN is no token', () => {
    assert.equal(loadConfig({ CRONQ_API_TOKEN: '' }).web.apiToken, undefined);
  });
});

describe('RABBITMQ_URL and its older form', () => {
  test('user, password, host, port and vhost', () => {
    const a = loadConfig({ RABBITMQ_URL: 'amqp://u%40x:p%2Fw@mq.example:5673/prod%2Fjobs' }).amqp;
    assert.deepEqual(a.hosts, [{ hostname: 'mq.example', port: 5673 }]);
    assert.equal(a.username, 'u@x');
    assert.equal(a.password, 'p/w');
    assert.equal(a.vhost, 'prod/jobs');
  });

  test('several comma-separated hosts, each with or without its port, tried in the order given', () => {
    const a = loadConfig({ RABBITMQ_URL: 'amqp://guest:guest@mq1,mq2:5673, mq3 /v' }).amqp;
    assert.deepEqual(a.hosts, [
      { hostname: 'mq1', port: 5672 },
      { hostname: 'mq2', port: 5673 },
      { hostname: 'mq3', port: 5672 },
    ]);
    assert.equal(a.vhost, 'v');
  });

  test('?heartbeat=N is the heartbeat; other parameters are kept', () => {
    const a = loadConfig({ RABBITMQ_URL: 'amqp://h/?heartbeat=30&frameMax=8192' }).amqp;
    assert.equal(a.heartbeat, 30);
    assert.deepEqual({ ...a.params }, { frameMax: '8192' });
    assert.equal(loadConfig({ RABBITMQ_URL: 'amqp://h/?heartbeat=0' }).amqp.heartbeat, 0);
  });

  test('amqps defaults to port 5671; no credentials means guest/guest; no vhost means /', () => {
    const a = parseAmqpUrl('amqps://secure.example');
    assert.deepEqual(a.hosts, [{ hostname: 'secure.example', port: 5671 }]);
    assert.equal(a.username, 'guest');
    assert.equal(a.password, 'guest');
    assert.equal(a.vhost, '/');
  });

  test('an IPv6 host in brackets', () => {
    assert.deepEqual(parseAmqpUrl('amqp://[::1]:5672/').hosts, [{ hostname: '::1', port: 5672 }]);
  });

  test('RABBITMQ_HOST/USER/PASS are used when RABBITMQ_URL is unset', () => {
    const a = loadConfig({
      RABBITMQ_HOST: 'mq.internal',
      RABBITMQ_USER: 'cronq',
      RABBITMQ_PASS: 's3cret',
    }).amqp;
    assert.deepEqual(a.hosts, [{ hostname: 'mq.internal', port: 5672 }]);
    assert.equal(a.username, 'cronq');
    assert.equal(a.password, 's3cret');
    assert.equal(a.vhost, '/');
  });

  test('RABBITMQ_HOST may list several hosts with ports', () => {
    const a = loadConfig({ RABBITMQ_HOST: 'a:5673,b' }).amqp;
    assert.deepEqual(a.hosts, [
      { hostname: 'a', port: 5673 },
      { hostname: 'b', port: 5672 },
    ]);
    assert.equal(a.username, 'guest');
  });

  test('RABBITMQ_USER alone keeps localhost', () => {
    const a = loadConfig({ RABBITMQ_USER: 'u' }).amqp;
    assert.deepEqual(a.hosts, [{ hostname: 'localhost', port: 5672 }]);
    assert.equal(a.username, 'u');
    assert.equal(a.password, 'guest');
  });

  test('RABBITMQ_URL wins over RABBITMQ_HOST', () => {
    assert.equal(
      loadConfig({ RABBITMQ_URL: 'amqp://x/', RABBITMQ_HOST: 'y' }).amqp.hosts[0]!.hostname,
      'x',
    );
  });
});

describe('DATABASE_URL and CRONQ_MYSQL', () => {
  test('mysql:// with every part', () => {
    const d = loadConfig({
      DATABASE_URL: 'mysql://cronq:p%40ss@db.example:3307/cronq_prod?charset=utf8mb4',
    }).database;
    assert.deepEqual(
      { ...d, params: { ...d.params } },
      {
        host: 'db.example',
        port: 3307,
        user: 'cronq',
        password: 'p@ss',
        database: 'cronq_prod',
        params: { charset: 'utf8mb4' },
      },
    );
  });

  for (const scheme of [
    'mysql+pymysql',
    'mysql+mysqlconnector',
    'mysql+mysqldb',
    'mariadb',
    'mariadb+mariadbconnector',
  ]) {
    test(`SQLAlchemy's ${scheme}:// is accepted and the driver ignored`, () => {
      const d = parseDatabaseUrl(`${scheme}://cronq:cronq@localhost/cronq`);
      assert.equal(d.host, 'localhost');
      assert.equal(d.user, 'cronq');
      assert.equal(d.password, 'cronq');
      assert.equal(d.database, 'cronq');
      assert.equal(d.port, 3306);
    });
  }

  test('CRONQ_MYSQL is used when DATABASE_URL is unset, and loses to it when both are set', () => {
    assert.equal(
      loadConfig({ CRONQ_MYSQL: 'mysql+mysqlconnector://a:b@old.example/olddb' }).database.database,
      'olddb',
    );
    assert.equal(
      loadConfig({ CRONQ_MYSQL: 'mysql://h/old', DATABASE_URL: 'mysql://h/new' }).database.database,
      'new',
    );
  });

  test('a URL without user means root with no password', () => {
    const d = parseDatabaseUrl('mysql://127.0.0.1/x');
    assert.equal(d.user, 'root');
    assert.equal(d.password, '');
  });
});

describe('a bad value is a ConfigError that names the setting and the accepted form', () => {
  const cases: Array<[Record<string, string>, string, RegExp?]> = [
    [{ RABBITMQ_URL: 'http://mq/' }, 'RABBITMQ_URL', /amqp\[s\]:\/\//],
    [{ RABBITMQ_URL: 'amqp://a,,b/' }, 'RABBITMQ_URL'],
    [{ RABBITMQ_URL: 'amqp://h:99999/' }, 'RABBITMQ_URL', /port 1-65535/],
    [{ RABBITMQ_URL: 'amqp://h/?heartbeat=soon' }, 'RABBITMQ_URL', /heartbeat/],
    [{ RABBITMQ_URL: 'amqp://h/?heartbeat=-1' }, 'RABBITMQ_URL', /heartbeat/],
    [{ RABBITMQ_HOST: 'amqp://mq/' }, 'RABBITMQ_HOST'],
    [{ DATABASE_URL: 'postgres://u@h/db' }, 'DATABASE_URL', /mysql\[\+driver\]/],
    [{ DATABASE_URL: 'mysql://h/' }, 'DATABASE_URL', /database name is missing/],
    [{ DATABASE_URL: 'mysql://h/bad name' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'mysql://h:0/db' }, 'DATABASE_URL', /port/],
    [{ CRONQ_MYSQL: 'sqlite:///x.db' }, 'CRONQ_MYSQL'],
    [{ CRONQ_QUEUE: 'has space' }, 'CRONQ_QUEUE', /queue name/],
    [{ CRONQ_CONCURRENCY: '0' }, 'CRONQ_CONCURRENCY', /1 to 1024/],
    [{ CRONQ_CONCURRENCY: '2.5' }, 'CRONQ_CONCURRENCY', /whole number/],
    [{ CRONQ_RUNNER_LOG_TO_STDOUT: 'maybe' }, 'CRONQ_RUNNER_LOG_TO_STDOUT', /true/],
    [{ CRONQ_OUTPUT_TAIL_BYTES: '-1' }, 'CRONQ_OUTPUT_TAIL_BYTES'],
    [{ CRONQ_DEFAULT_TIMEOUT_SECONDS: 'ten' }, 'CRONQ_DEFAULT_TIMEOUT_SECONDS', /a number/],
    [{ CRONQ_KILL_GRACE_SECONDS: '-2' }, 'CRONQ_KILL_GRACE_SECONDS'],
    [{ CRONQ_SHUTDOWN_GRACE_SECONDS: 'x' }, 'CRONQ_SHUTDOWN_GRACE_SECONDS'],
    [{ CRONQ_HEARTBEAT_SECONDS: '0' }, 'CRONQ_HEARTBEAT_SECONDS'],
    [{ CRONQ_RESULT_BUFFER_MAX_BYTES: '10' }, 'CRONQ_RESULT_BUFFER_MAX_BYTES'],
    [{ CRONQ_INJECTOR_MAX_POLL_MS: '1' }, 'CRONQ_INJECTOR_MAX_POLL_MS'],
    [{ CRONQ_INJECTOR_BATCH_SIZE: '0' }, 'CRONQ_INJECTOR_BATCH_SIZE'],
    [{ CRONQ_INJECTOR_REPUBLISH_AFTER_MS: '10' }, 'CRONQ_INJECTOR_REPUBLISH_AFTER_MS'],
    [{ CRONQ_INJECTOR_LEAD_MS: '5001' }, 'CRONQ_INJECTOR_LEAD_MS'],
    [{ CRONQ_INJECTOR_LEAD_MS: '-1' }, 'CRONQ_INJECTOR_LEAD_MS'],
    [{ CRONQ_RESULTS_PREFETCH: '0' }, 'CRONQ_RESULTS_PREFETCH'],
    [{ CRONQ_LOST_AFTER_SECONDS: '0' }, 'CRONQ_LOST_AFTER_SECONDS'],
    [{ CRONQ_RESULTS_FLUSH_MS: '-5' }, 'CRONQ_RESULTS_FLUSH_MS'],
    [{ PORT: '70000' }, 'PORT', /0 to 65535/],
    [{ PORT: 'http' }, 'PORT'],
    [{ CRONQ_API_TOKEN: 'short' }, 'CRONQ_API_TOKEN', /at least 8/],
    [{ CRONQ_LOG_URL_TEMPLATE: 'logs.example/{run_id}' }, 'CRONQ_LOG_URL_TEMPLATE', /http/],
    [{ CRONQ_API_BODY_LIMIT: 'lots' }, 'CRONQ_API_BODY_LIMIT', /512kb/],
    [{ CRONQ_ALLOWED_HOSTS: 'user@evil.example' }, 'CRONQ_ALLOWED_HOSTS', /comma-separated/],
    [{ CRONQ_STATUS_RATE: '0' }, 'CRONQ_STATUS_RATE', /1 to 100000/],
    [{ CRONQ_WEB_CLIENT_CONCURRENCY: 'many' }, 'CRONQ_WEB_CLIENT_CONCURRENCY', /1 to 1000/],
    [{ CRONQ_LOG_LEVEL: 'loud' }, 'CRONQ_LOG_LEVEL', /debug/],
    [{ CRONQ_LOG_FORMAT: 'xml' }, 'CRONQ_LOG_FORMAT', /json or pretty/],
  ];
  for (const [env, setting, accepted] of cases) {
    test(`${setting}=${Object.values(env)[0]}`, () => badSetting(env, setting, accepted));
  }

  test('the API token never appears in the message', () => {
    assert.throws(
      () => loadConfig({ CRONQ_API_TOKEN: 'abc' }),
      (e: Error) => !e.message.includes('abc'),
    );
  });

  test('a password in a bad URL is hidden', () => {
    assert.throws(
      () => loadConfig({ DATABASE_URL: 'postgres://u:hunter2@h/db' }),
      (e: Error) => !e.message.includes('hunter2') && e.message.includes('***'),
    );
    assert.equal(redact('amqp://u:pw@h/'), 'amqp://u:***@h/');
  });
});

describe('helpers', () => {
  test('describeConfig carries no secret', () => {
    const c = loadConfig({
      RABBITMQ_URL: 'amqp://u:mqpass@h/',
      DATABASE_URL: 'mysql://u:dbpass@h/d',
      CRONQ_API_TOKEN: 'tokentoken',
    });
    const text = JSON.stringify(describeConfig(c));
    for (const s of ['mqpass', 'dbpass', 'tokentoken']) assert.ok(!text.includes(s), s);
    assert.match(text, /"apiToken":"set"/);
  });
  test('isLoopback', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost'])
      assert.equal(isLoopback(h), true, h);
    for (const h of ['0.0.0.0', '10.0.0.1', '::']) assert.equal(isLoopback(h), false, h);
  });
});
