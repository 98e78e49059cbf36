import os from 'node:os';
import { amqpFromEnv, databaseFromEnv, type AmqpConfig, type DatabaseConfig } from './config-urls';
import { boolSetting, fail, intSetting, numberSetting, type Env } from './config-values';
import { metricsFromEnv, type MetricsConfig } from './config-metrics';
import { MAX_LEAD_MS } from './messages';
import { MIN_KEY_LENGTH, parseMessageKeys } from './signing';
import { QUEUE_TYPES, type QueueType } from './queue-type';
import { notifyFromEnv, type NotifyConfig } from './notify/config';

/**
 * Every setting of CronQ, read once from the environment (and flags, passed
 * in as `overrides`), validated up front and returned frozen. A bad value is
 * a ConfigError naming the setting and its accepted form; commands turn it
 * into one line on stderr and exit code 2. How a value is read is in
 * config-values.ts; the broker and database URLs in config-urls.ts.
 */

export {
  parseAmqpUrl,
  parseDatabaseUrl,
  type AmqpConfig,
  type DatabaseConfig,
} from './config-urls';

export interface Config {
  amqp: AmqpConfig;
  database: DatabaseConfig;
  log: { level: string; format: 'json' | 'pretty' };
  injector: {
    /** Longest wait between two looks at the database, so new and run-now jobs are seen. */
    maxPollMs: number;
    /** Most jobs claimed in one transaction. */
    batchSize: number;
    /** A claimed run whose publish was not confirmed after this long is published again. */
    republishAfterMs: number;
    /**
     * How far ahead of its occurrence a run is claimed and published; the
     * runner holds it until the occurrence, so the claim and the publish
     * are done by then. 0 = claim only once due (for runners that do not hold).
     */
    leadMs: number;
  };
  runner: {
    queue: string;
    concurrency: number;
    logToStdout: boolean;
    logPath: string;
    outputTailBytes: number;
    /** Default per-job timeout in seconds; 0 = none. A job's own timeout wins. */
    defaultTimeoutSeconds: number;
    /** Between SIGTERM and SIGKILL when a job times out or the runner stops. */
    killGraceMs: number;
    /** How long SIGTERM lets running jobs finish before they are terminated. */
    shutdownGraceMs: number;
    heartbeatMs: number;
    /** Where results wait while the broker is away. */
    bufferPath: string;
    bufferMaxBytes: number;
    /** CronQ settings a job may still see (names, or prefixes ending in `*`); all others are removed. */
    jobEnvPass: readonly string[];
    /** A job log past this size is rotated (`.1` .. `.3` kept); 0 = never. */
    jobLogMaxBytes: number;
  };
  results: {
    prefetch: number;
    /** A running run with no heartbeat or result for this long is marked lost. */
    lostAfterMs: number;
    /** Longest wait before a batch is written even if it is not full. */
    flushMs: number;
  };
  web: {
    port: number;
    listenInterface: string;
    apiToken: string | undefined;
    logUrlTemplate: string | undefined;
    bodyLimit: string;
    /** Host names (optionally with :port) served besides the loopback names and LISTEN_INTERFACE. */
    allowedHosts: readonly string[];
    /** Requests per second each client address may make to the unauthenticated /_status. */
    statusRatePerSecond: number;
    /** Database-reading requests one client address may have in progress at once (more wait). */
    clientConcurrency: number;
  };
  /** docs/notifications.md. The webhook secret and the SMTP URL are never logged. */
  notify: NotifyConfig;
  /** /metrics of the injector, runner and results consumer (config-metrics.ts). */
  metrics: MetricsConfig;
  /** docs/security.md. Secret: never logged (describeConfig says only whether it is set). */
  signing: {
    /** CRONQ_MESSAGE_KEY: empty = signing off; the first signs, all verify. */
    keys: readonly string[];
    /** A job message signed longer ago (or further ahead) than this is refused. */
    jobMaxAgeMs: number;
  };
  host: string;
}

/** CRONQ_JOB_ENV_PASS: comma-separated variable names, each maybe ending in `*` (a prefix); a bare `*` is refused. */
function envPassList(env: Env): string[] {
  const raw = env.CRONQ_JOB_ENV_PASS ?? '';
  const names = raw
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  for (const n of names)
    if (!/^[A-Za-z_][A-Za-z0-9_]*\*?$/.test(n))
      fail(
        'CRONQ_JOB_ENV_PASS',
        raw,
        'comma-separated variable names, each maybe ending in * (e.g. LOG_PATH,CRONQ_APP_*)',
      );
  return names;
}

const ALLOWED_HOST_FORM =
  /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::\d{1,5})?$/;

const QUEUE_FORM = 'a queue name of letters, digits, and . _ - : (at most 255 characters)';
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Read and validate every setting. `overrides` are flag values, which win over the environment. */
export function loadConfig(env: Env = process.env, overrides: Env = {}): Config {
  const e: Env = {
    ...env,
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
  };

  const queue = e.CRONQ_QUEUE?.trim() || 'cronq_jobs';
  if (!/^[A-Za-z0-9._:-]{1,255}$/.test(queue)) fail('CRONQ_QUEUE', queue, QUEUE_FORM);

  const level = (e.CRONQ_LOG_LEVEL ?? e.LOG_LEVEL ?? 'info').trim().toLowerCase();
  if (!LEVELS.includes(level)) fail('CRONQ_LOG_LEVEL', level, LEVELS.join(', '));
  const format = (e.CRONQ_LOG_FORMAT ?? 'json').trim().toLowerCase();
  if (format !== 'json' && format !== 'pretty') fail('CRONQ_LOG_FORMAT', format, 'json or pretty');

  const listenInterface = e.LISTEN_INTERFACE?.trim() || '127.0.0.1';
  const token =
    e.CRONQ_API_TOKEN === undefined || e.CRONQ_API_TOKEN === '' ? undefined : e.CRONQ_API_TOKEN;
  if (token !== undefined && token.length < 8)
    fail('CRONQ_API_TOKEN', '***', 'a secret of at least 8 characters');

  const template = e.CRONQ_LOG_URL_TEMPLATE?.trim() || undefined;
  if (template !== undefined && !/^https?:\/\//.test(template))
    fail(
      'CRONQ_LOG_URL_TEMPLATE',
      template,
      'an http(s):// URL with {job_id}, {run_id}, {start_time}, {end_time}',
    );

  const bodyLimit = e.CRONQ_API_BODY_LIMIT?.trim() || '1mb';
  if (!/^\d+(b|kb|mb)$/i.test(bodyLimit))
    fail('CRONQ_API_BODY_LIMIT', bodyLimit, 'a size such as 512kb or 1mb');

  const allowedHosts = (e.CRONQ_ALLOWED_HOSTS ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  for (const h of allowedHosts)
    if (!ALLOWED_HOST_FORM.test(h))
      fail(
        'CRONQ_ALLOWED_HOSTS',
        e.CRONQ_ALLOWED_HOSTS ?? '',
        'comma-separated host names or addresses, each optionally with :port (cronq.example.com,10.0.0.5:5000,[fd00::1])',
      );
  const keys = parseMessageKeys(e.CRONQ_MESSAGE_KEY ?? '');
  if (keys.some((k) => k.length < MIN_KEY_LENGTH))
    fail(
      'CRONQ_MESSAGE_KEY',
      '***',
      `one or more secrets of at least ${MIN_KEY_LENGTH} characters, separated by commas, none containing spaces or commas (e.g. from: openssl rand -hex 32)`,
    );
  const queueType = (e.CRONQ_QUEUE_TYPE?.trim().toLowerCase() || 'classic') as QueueType;
  if (!QUEUE_TYPES.includes(queueType))
    fail('CRONQ_QUEUE_TYPE', e.CRONQ_QUEUE_TYPE ?? '', QUEUE_TYPES.join(' or '));

  const config: Config = {
    amqp: { ...amqpFromEnv(e), queueType },
    database: databaseFromEnv(e),
    log: { level, format },
    injector: {
      maxPollMs: intSetting(e, 'CRONQ_INJECTOR_MAX_POLL_MS', 1000, 10, 60_000),
      batchSize: intSetting(e, 'CRONQ_INJECTOR_BATCH_SIZE', 500, 1, 10_000),
      republishAfterMs: intSetting(e, 'CRONQ_INJECTOR_REPUBLISH_AFTER_MS', 30_000, 1000, 3_600_000),
      leadMs: intSetting(e, 'CRONQ_INJECTOR_LEAD_MS', 500, 0, MAX_LEAD_MS),
    },
    runner: {
      queue,
      concurrency: intSetting(e, 'CRONQ_CONCURRENCY', 1, 1, 1024),
      logToStdout: boolSetting(e, 'CRONQ_RUNNER_LOG_TO_STDOUT', false),
      logPath: e.LOG_PATH?.trim() || '/var/log/cronq',
      outputTailBytes: intSetting(e, 'CRONQ_OUTPUT_TAIL_BYTES', 65536, 0, 16 * 1024 * 1024),
      defaultTimeoutSeconds: numberSetting(e, 'CRONQ_DEFAULT_TIMEOUT_SECONDS', 0, 0, 365 * 86400),
      killGraceMs: Math.round(numberSetting(e, 'CRONQ_KILL_GRACE_SECONDS', 10, 0, 3600) * 1000),
      shutdownGraceMs: Math.round(
        numberSetting(e, 'CRONQ_SHUTDOWN_GRACE_SECONDS', 30, 0, 86400) * 1000,
      ),
      heartbeatMs: Math.round(numberSetting(e, 'CRONQ_HEARTBEAT_SECONDS', 10, 0.1, 3600) * 1000),
      bufferPath: e.CRONQ_RESULT_BUFFER_PATH?.trim() || '',
      bufferMaxBytes: intSetting(
        e,
        'CRONQ_RESULT_BUFFER_MAX_BYTES',
        256 * 1024 * 1024,
        1024,
        64 * 1024 * 1024 * 1024,
      ),
      jobEnvPass: envPassList(e),
      jobLogMaxBytes: intSetting(e, 'CRONQ_JOB_LOG_MAX_BYTES', 10 * 1024 * 1024, 0, 2 ** 40),
    },
    results: {
      prefetch: intSetting(e, 'CRONQ_RESULTS_PREFETCH', 500, 1, 65535),
      lostAfterMs: Math.round(
        numberSetting(e, 'CRONQ_LOST_AFTER_SECONDS', 60, 1, 86400 * 7) * 1000,
      ),
      flushMs: intSetting(e, 'CRONQ_RESULTS_FLUSH_MS', 50, 0, 10_000),
    },
    web: {
      port: intSetting(e, 'PORT', 5000, 0, 65535),
      listenInterface,
      apiToken: token,
      logUrlTemplate: template,
      bodyLimit,
      allowedHosts,
      statusRatePerSecond: intSetting(e, 'CRONQ_STATUS_RATE', 10, 1, 100_000),
      clientConcurrency: intSetting(e, 'CRONQ_WEB_CLIENT_CONCURRENCY', 4, 1, 1000),
    },
    notify: notifyFromEnv(e),
    metrics: metricsFromEnv(e),
    signing: {
      keys,
      jobMaxAgeMs: intSetting(e, 'CRONQ_MESSAGE_MAX_AGE_SECONDS', 3600, 60, 30 * 86400) * 1000,
    },
    host: e.CRONQ_HOSTNAME?.trim() || os.hostname(),
  };
  return deepFreeze(config);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** The config as it may be logged: passwords and the token replaced. */
export function describeConfig(c: Config): Record<string, unknown> {
  return {
    amqp: {
      hosts: c.amqp.hosts.map((h) => `${h.hostname}:${h.port}`),
      vhost: c.amqp.vhost,
      user: c.amqp.username,
      queueType: c.amqp.queueType,
    },
    database: {
      host: c.database.host,
      port: c.database.port,
      database: c.database.database,
      user: c.database.user,
    },
    apiToken: c.web.apiToken ? 'set' : 'unset',
    metrics: c.metrics.port === undefined ? 'off' : `${c.metrics.listen}:${c.metrics.port}`,
    messageSigning: c.signing.keys.length > 0 ? 'on' : 'off',
    notify: {
      targets: c.notify.targets.length,
      webhookSigning: c.notify.webhookSecret ? 'on' : 'off',
      smtp: c.notify.smtpUrl ? 'set' : 'unset',
    },
  };
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(iface: string): boolean {
  return iface === 'localhost' || iface === '::1' || /^127\.\d+\.\d+\.\d+$/.test(iface);
}
