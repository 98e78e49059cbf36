import path from 'node:path';
import { createHash } from 'node:crypto';
import querystring from 'node:querystring';
import ejs from 'ejs';
import express, { type Express, type RequestHandler } from 'express';
import type { Config } from '../core/config';
import type { ControlPublisher } from '../core/control';
import type { AmqpConnection } from '../core/amqp';
import type { Knex } from '../core/db';
import type { Logger } from '../core/logger';
import { requireToken } from './auth';
import { StaticAssets } from './assets';
import { CsrfTokens, csrfProtection } from './csrf';
import { errorForLog, errorHandler, notFound } from './errors';
import { hostRules, requireKnownHost } from './host-check';
import { ClientGate, TokenBuckets, rateLimit } from './limits';
import * as fmt from './format';
import { WebMetrics, requireMetricsToken } from './metrics';
import { ping } from './queries';
import { apiRouter } from './routes/api';
import { liveOutputRouter } from './routes/api-live-output';
import type { OutputHub } from './live/output-hub';
import { pagesRouter } from './routes/pages';

export interface WebDeps {
  db: Knex;
  config: Config;
  logger: Logger;
  /**
   * Control orders (kill, wake) over the broker; without it, or while the
   * broker is away, kill answers 503 "broker unavailable" and *Run now*
   * waits for the injector's next poll.
   */
  control?: ControlPublisher;
  /** Live output (live/output-hub.ts); absent, or without a broker, the live view answers 503. */
  live?: OutputHub;
  /** The broker connection, for /system's queue depths and reachability; absent = not shown. */
  broker?: AmqpConnection;
  /** The clock for relative times on pages (tests pin it). What is due is decided by the database clock. */
  now?: () => Date;
}

/** Shipped beside dist/ (and src/ when run with tsx). */
export const VIEWS_DIR = path.resolve(__dirname, '..', '..', 'views');
export const PUBLIC_DIR = path.resolve(__dirname, '..', '..', 'public');

/** Longest /_status waits for the database before answering 503. */
const STATUS_TIMEOUT_MS = 3000;

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

const securityHeaders: RequestHandler = (_req, res, next) => {
  res.set({
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'same-origin',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cache-Control': 'no-store',
  });
  next();
};

/** One line per request, without headers (the Authorization header never reaches a log). */
function accessLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      logger.debug(
        {
          method: req.method,
          path: req.path,
          status: res.statusCode,
          ms: Math.round(ms * 10) / 10,
        },
        'request',
      );
    });
    next();
  };
}

/**
 * The web admin and JSON API as an Express app, built only from what is
 * passed in (no globals), so tests start it in-process on port 0.
 */
/**
 * Every pair of the query string. Express's 'simple' parser keeps the first
 * 1,000 and drops the rest without a word, so `?` + 1,000 `&` + `dry_run=1`
 * applied a category for real; the request line's size (Node's header
 * limit, 16 KiB) bounds how many there can be.
 */
function parseQuery(s: string): querystring.ParsedUrlQuery {
  return querystring.parse(s, '&', '=', { maxKeys: 0 });
}

export function createApp(deps: WebDeps): Express {
  const { db, config, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', parseQuery);
  app.set('views', VIEWS_DIR);
  app.set('view engine', 'ejs');
  app.set('view cache', true);
  // EJS with our escape for every `<%= %>`: invisible characters shown as ⟨U+XXXX⟩.
  app.engine('ejs', (file: string, data: object, cb: (e: unknown, html?: string) => void) => {
    ejs.renderFile(file, data, { escape: fmt.escapeVisible, cache: true, views: [VIEWS_DIR] }, cb);
  });
  const assets = new StaticAssets(PUBLIC_DIR);
  Object.assign(app.locals, {
    fmt,
    tokenRequired: config.web.apiToken !== undefined,
    asset: (name: string) => assets.url(name),
  });

  // A stable CSRF secret across restarts when a token exists (forms keep working); random otherwise.
  const csrf = new CsrfTokens(
    config.web.apiToken
      ? createHash('sha256').update(`cronq-csrf:${config.web.apiToken}`).digest()
      : undefined,
  );

  app.use(securityHeaders);
  app.use(accessLog(logger));

  const hosts = hostRules(config.web.listenInterface, config.web.allowedHosts);
  // /_status is served whatever the Host (a load balancer checks by IP address): it
  // reads nothing and changes nothing, so a rebound page learns only "up".
  app.use(requireKnownHost(hosts, (p) => p === '/_status'));

  // Open to load balancers and monitors even when a token is set, so limited per client.
  const statusRate = config.web.statusRatePerSecond;
  const statusBuckets = new TokenBuckets(statusRate, statusRate * 2);
  app.get('/_status', rateLimit(statusBuckets, statusRate), async (_req, res) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      // A monitor wants an answer, not a hang: a database that does not answer in time is down.
      await Promise.race([
        ping(db),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer to SELECT 1 within ${STATUS_TIMEOUT_MS} ms`)),
            STATUS_TIMEOUT_MS,
          );
        }),
      ]);
      res.json({ status: 'OK' });
    } catch (err) {
      const logged = errorForLog(err);
      logger.warn(logged, '/_status: database check failed');
      res.status(503).json({ status: 'error', reason: `database: ${String(logged.err)}` });
    } finally {
      clearTimeout(timer);
    }
  });

  // Before the API token: a Prometheus server may hold only CRONQ_METRICS_TOKEN (metrics.ts).
  const metricsRate = new TokenBuckets(statusRate, statusRate * 2);
  // Made at the first scrape: a web nobody scrapes keeps no registry.
  let metrics: WebMetrics | undefined;
  app.get(
    '/metrics',
    rateLimit(metricsRate, statusRate),
    requireMetricsToken([config.web.apiToken, config.metrics.token]),
    (req, res, next) => (metrics ??= new WebMetrics(db, logger)).handler()(req, res, next),
  );

  app.use(requireToken(config.web.apiToken));
  app.use('/static', assets.handler());
  // Forms are parsed before the CSRF check, which reads their _csrf field; JSON is parsed by the API routes that take it.
  app.use(express.urlencoded({ extended: false, limit: '16kb' }));
  app.use(csrfProtection(csrf, hosts));
  // A live view holds its request open: limited on its own, not by the client gate.
  app.use('/api', liveOutputRouter(deps));
  // Every route below reads the database: one client gets only a few connections at a time.
  app.use(new ClientGate(config.web.clientConcurrency, 64).middleware());
  app.use('/api', apiRouter(deps));
  app.use(pagesRouter(deps, csrf));
  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
