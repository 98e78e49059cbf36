import type { QueueType } from './queue-type';
import { fail, type Env } from './config-values';

/**
 * The broker and database locations: URLs (several brokers in one), or the
 * original's RABBITMQ_HOST/_USER/_PASS and CRONQ_MYSQL, with local defaults.
 */

export interface AmqpHost {
  hostname: string;
  port: number;
}

export interface AmqpConfig {
  hosts: readonly AmqpHost[];
  username: string;
  password: string;
  vhost: string;
  /** Heartbeat in seconds; undefined lets the broker choose. */
  heartbeat: number | undefined;
  /** Extra query parameters other than heartbeat (e.g. frameMax), kept as given. */
  params: Readonly<Record<string, string>>;
  /** CRONQ_QUEUE_TYPE: the type of the queues the daemons declare; classic when unset. */
  queueType?: QueueType;
}

export interface DatabaseConfig {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Query parameters of the URL (e.g. charset), passed to mysql2 where they mean something. */
  params: Readonly<Record<string, string>>;
}

const DEFAULT_AMQP_URL = 'amqp://guest:guest@localhost/';
const DEFAULT_DATABASE_URL = 'mysql://root@localhost/cronq';

function parseQuery(q: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!q) return out;
  for (const [k, v] of new URLSearchParams(q)) out[k] = v;
  return out;
}

const AMQP_FORM = 'amqp[s]://user:pass@host[:port][,host2[:port]...]/vhost[?heartbeat=N]';

export function parseAmqpUrl(url: string, setting = 'RABBITMQ_URL'): AmqpConfig {
  const m = /^(amqps?):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?]*)(?:\/([^?]*))?(?:\?(.*))?$/.exec(
    url.trim(),
  );
  if (!m) fail(setting, url, AMQP_FORM);
  const [, scheme, user, pass, hostPart, vhostPart, query] = m;
  const defaultPort = scheme === 'amqps' ? 5671 : 5672;
  const hosts = (hostPart ?? '').split(',').map((h) => h.trim());
  if (hosts.length === 0 || hosts.some((h) => h === '')) fail(setting, url, AMQP_FORM);
  const parsedHosts = hosts.map((h) => {
    const hm = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(h);
    if (!hm) fail(setting, url, AMQP_FORM);
    const port = hm[2] === undefined ? defaultPort : Number(hm[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      fail(setting, url, AMQP_FORM + ' (port 1-65535)');
    return { hostname: hm[1]!.replace(/^\[|\]$/g, ''), port };
  });
  const params = parseQuery(query);
  let heartbeat: number | undefined;
  if (params.heartbeat !== undefined) {
    heartbeat = Number(params.heartbeat);
    if (!Number.isInteger(heartbeat) || heartbeat < 0)
      fail(setting, url, `${AMQP_FORM} with heartbeat a whole number of seconds`);
    delete params.heartbeat;
  }
  const vhost = vhostPart === undefined || vhostPart === '' ? '/' : decodeURIComponent(vhostPart);
  return {
    hosts: parsedHosts,
    username: user === undefined || user === '' ? 'guest' : decodeURIComponent(user),
    password: pass === undefined ? 'guest' : decodeURIComponent(pass),
    vhost,
    heartbeat,
    params,
  };
}

const DB_FORM =
  'mysql[+driver]://user[:pass]@host[:port]/database (e.g. mysql+pymysql://cronq:cronq@localhost/cronq)';

export function parseDatabaseUrl(url: string, setting = 'DATABASE_URL'): DatabaseConfig {
  // SQLAlchemy spells the driver as a suffix of the scheme: mysql+mysqlconnector://
  const m =
    /^(mysql|mariadb)(?:\+[A-Za-z0-9_]+)?:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/:?]*|\[[^\]]+\])(?::(\d+))?\/([^?]*)(?:\?(.*))?$/.exec(
      url.trim(),
    );
  if (!m) fail(setting, url, DB_FORM);
  const [, , user, pass, host, port, database, query] = m;
  if (!database) fail(setting, url, DB_FORM + ' (the database name is missing)');
  if (!/^[A-Za-z0-9_$-]+$/.test(database))
    fail(setting, url, DB_FORM + ' (database name of letters, digits, _ $ -)');
  const portNum = port === undefined ? 3306 : Number(port);
  if (portNum < 1 || portNum > 65535) fail(setting, url, DB_FORM + ' (port 1-65535)');
  return {
    host: host === undefined || host === '' ? 'localhost' : host.replace(/^\[|\]$/g, ''),
    port: portNum,
    user: user === undefined || user === '' ? 'root' : decodeURIComponent(user),
    password: pass === undefined ? '' : decodeURIComponent(pass),
    database,
    params: parseQuery(query),
  };
}

export function amqpFromEnv(env: Env): AmqpConfig {
  if (env.RABBITMQ_URL !== undefined && env.RABBITMQ_URL.trim() !== '')
    return parseAmqpUrl(env.RABBITMQ_URL);
  if (env.RABBITMQ_HOST || env.RABBITMQ_USER || env.RABBITMQ_PASS) {
    const hostRaw = env.RABBITMQ_HOST?.trim() || 'localhost';
    if (!/^[^\s/@?]+$/.test(hostRaw))
      fail('RABBITMQ_HOST', hostRaw, 'host[:port][,host2[:port]...]');
    const base = parseAmqpUrl(`amqp://${hostRaw}/`, 'RABBITMQ_HOST');
    return {
      ...base,
      username: env.RABBITMQ_USER ?? 'guest',
      password: env.RABBITMQ_PASS ?? 'guest',
    };
  }
  return parseAmqpUrl(DEFAULT_AMQP_URL);
}

export function databaseFromEnv(env: Env): DatabaseConfig {
  if (env.DATABASE_URL !== undefined && env.DATABASE_URL.trim() !== '')
    return parseDatabaseUrl(env.DATABASE_URL);
  if (env.CRONQ_MYSQL !== undefined && env.CRONQ_MYSQL.trim() !== '')
    return parseDatabaseUrl(env.CRONQ_MYSQL, 'CRONQ_MYSQL');
  return parseDatabaseUrl(DEFAULT_DATABASE_URL);
}
