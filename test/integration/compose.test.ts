/**
 * The deployment files: docker-compose.yml is valid YAML describing the two
 * services and the four daemons with health checks, restart policies and
 * start order; the Dockerfile builds the package; the systemd units start
 * commands that exist. (`docker compose config` is run only where the
 * compose plugin exists; Docker does not run on the test machine.)
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../helpers/processes';
import { parseAmqpUrl, parseDatabaseUrl } from '../../src/core/config';

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  restart?: string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
}
const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), {
  merge: true,
}) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  files: string[];
};
const DAEMONS = ['injector', 'results', 'runner', 'web'];

/** Compose's ${VAR:-default} and ${VAR:?message} with no variables set. */
function interpolate(s: string): string {
  return s.replace(
    /\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}/g,
    (_m, name: string, def?: string) => def ?? `<${name}>`,
  );
}

describe('docker-compose.yml', () => {
  test('has MariaDB, RabbitMQ with the management UI, and the four daemons', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), [
      'injector',
      'mariadb',
      'rabbitmq',
      'results',
      'runner',
      'web',
    ]);
    assert.match(compose.services.mariadb!.image!, /^mariadb:/);
    assert.equal(compose.services.rabbitmq!.image, 'rabbitmq:3-management');
  });

  test('every service has a restart policy; the services and the web have health checks', () => {
    for (const [name, s] of Object.entries(compose.services))
      assert.equal(s.restart, 'unless-stopped', name);
    assert.deepEqual(compose.services.mariadb!.healthcheck!.test.slice(0, 2), [
      'CMD',
      'healthcheck.sh',
    ]);
    assert.deepEqual(compose.services.rabbitmq!.healthcheck!.test, [
      'CMD',
      'rabbitmq-diagnostics',
      '-q',
      'ping',
    ]);
    assert.ok(
      compose.services.web!.healthcheck!.test.join(' ').includes('http://127.0.0.1:5000/_status'),
    );
  });

  for (const d of DAEMONS) {
    test(`${d} is built from the package, runs cronq-${d}, and starts after healthy services`, () => {
      const s = compose.services[d]!;
      assert.equal(s.build, '.');
      assert.deepEqual(s.command, [`cronq-${d}`]);
      assert.ok(pkg.bin[`cronq-${d}`], `package.json has a bin cronq-${d}`);
      assert.deepEqual(s.depends_on, {
        mariadb: { condition: 'service_healthy' },
        rabbitmq: { condition: 'service_healthy' },
      });
      const env = s.environment!;
      assert.equal(parseDatabaseUrl(interpolate(env.DATABASE_URL!)).host, 'mariadb');
      assert.equal(parseAmqpUrl(interpolate(env.RABBITMQ_URL!)).hosts[0]!.hostname, 'rabbitmq');
    });
  }

  test("the web listens beyond loopback only with a required token, published on the host's loopback", () => {
    const web = compose.services.web!;
    assert.equal(web.environment!.LISTEN_INTERFACE, '0.0.0.0');
    assert.match(web.environment!.CRONQ_API_TOKEN!, /^\$\{CRONQ_API_TOKEN:\?/);
    assert.deepEqual(web.ports, ['127.0.0.1:5000:5000']);
  });

  test('every named volume is declared', () => {
    for (const s of Object.values(compose.services)) {
      for (const v of (s as { volumes?: string[] }).volumes ?? []) {
        const name = v.split(':')[0]!;
        if (!name.startsWith('/') && !name.startsWith('.'))
          assert.ok(name in compose.volumes, name);
      }
    }
  });

  test('docker compose config accepts it (where the compose plugin exists)', (t) => {
    try {
      execFileSync('docker', ['compose', 'version'], { stdio: 'ignore' });
    } catch {
      t.skip('no docker compose plugin here');
      return;
    }
    execFileSync(
      'docker',
      ['compose', '-f', path.join(ROOT, 'docker-compose.yml'), 'config', '-q'],
      { env: { ...process.env, CRONQ_API_TOKEN: 'compose-test-token' } },
    );
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  test('builds on node:20-slim with npm ci and npm run build, and ships what package.json ships', () => {
    const froms = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    assert.ok(froms.length >= 1 && froms.every((f) => f === 'node:20-slim'), froms.join());
    assert.match(text, /RUN npm ci/);
    assert.match(text, /npm run build/);
    for (const f of pkg.files.filter((x) => x.endsWith('/')))
      assert.ok(text.includes(`./${f.replace(/\/$/, '')}`), `copies ${f}`);
    assert.match(text, /^USER node$/m);
  });
  test('.dockerignore keeps node_modules and dist out of the build context', () => {
    const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n');
    assert.ok(ignore.includes('node_modules') && ignore.includes('dist'));
  });
});

describe('systemd units in examples/', () => {
  const dir = path.join(ROOT, 'examples', 'systemd');
  const units = readdirSync(dir).filter((f) => f.endsWith('.service'));
  test('there is one unit per daemon', () => {
    assert.deepEqual(units.sort(), DAEMONS.map((d) => `cronq-${d}.service`).sort());
  });
  for (const u of units) {
    test(`${u} starts an existing command, restarts it, and reads the shared environment file`, () => {
      const text = readFileSync(path.join(dir, u), 'utf8');
      for (const section of ['[Unit]', '[Service]', '[Install]'])
        assert.ok(text.includes(section), section);
      const exec = /^ExecStart=(\S+)/m.exec(text)![1]!;
      assert.ok(pkg.bin[path.basename(exec)], exec);
      assert.match(text, /^Restart=always$/m);
      assert.match(text, /^EnvironmentFile=\/etc\/cronq\/cronq\.env$/m);
      assert.match(text, /^KillSignal=SIGTERM$/m);
    });
  }
  test('the example environment file holds valid URLs', () => {
    const env = Object.fromEntries(
      readFileSync(path.join(dir, 'cronq.env'), 'utf8')
        .split('\n')
        .filter((l) => /^\w+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    ) as Record<string, string>;
    assert.equal(parseDatabaseUrl(env.DATABASE_URL!).database, 'cronq');
    assert.equal(parseAmqpUrl(env.RABBITMQ_URL!).hosts.length, 2);
  });
});
