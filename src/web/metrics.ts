import type { Request, RequestHandler } from 'express';
import { Gauge, type Registry } from 'prom-client';
import { within } from '../core/async';
import type { Knex } from '../core/db';
import { errorText } from '../core/error-text';
import type { Logger } from '../core/logger';
import { createRegistry } from '../core/metrics';
import { credentialsOf, tokenMatches } from './auth';
import { HttpError } from './errors';
import { readJobsSnapshot, type JobsSnapshot } from './metrics-query';

/** A scrape within this long of the last read gets the same figures: scrapes cannot hammer the database. */
const CACHE_MS = 5_000;
/** A database that does not answer in time is reported down, not waited for. */
const QUERY_TIMEOUT_MS = 5_000;

/**
 * The web's /metrics: what the database says about all jobs (metrics-query.ts),
 * read at most once per CACHE_MS however many scrapes come, plus the
 * default process metrics of the web process.
 */
export class WebMetrics {
  readonly registry: Registry = createRegistry();
  private last: { at: number; snapshot: JobsSnapshot | undefined } | undefined;
  private reading: Promise<JobsSnapshot | undefined> | undefined;

  constructor(
    private readonly db: Knex,
    private readonly logger: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {
    const registers = [this.registry];
    const snapshot = () => this.snapshot();
    new Gauge({
      name: 'cronq_web_database_up',
      help: "1 when the web's last read of the job figures succeeded within 5 s, 0 otherwise (then the cronq_jobs* and cronq_runs* figures are absent).",
      registers,
      async collect() {
        this.set((await snapshot()) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'cronq_jobs',
      help: "Jobs by current_status (the status of the job's last started run; none before its first).",
      labelNames: ['status'] as const,
      registers,
      async collect() {
        this.reset();
        const s = await snapshot();
        if (s) for (const [status, n] of s.byStatus) this.labels(status).set(n);
      },
    });
    const simple = (name: string, help: string, value: (s: JobsSnapshot) => number) =>
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          this.reset();
          const s = await snapshot();
          if (s) this.set(value(s));
        },
      });
    simple(
      'cronq_runs_oldest_queued_age_seconds',
      'How long the oldest queued run that may start has waited for a runner (0 when none waits).',
      (s) => s.oldestQueuedSeconds,
    );
    simple('cronq_runs_running', 'Runs started by a runner and not finished.', (s) => s.running);
    simple(
      'cronq_jobs_late',
      'Enabled, unpaused jobs whose next_run is more than 60 s in the past: no injector has claimed them.',
      (s) => s.late,
    );
    simple(
      'cronq_jobs_overdue',
      'Jobs with no success within their alert_after (the dead-man switch; docs/notifications.md).',
      (s) => s.overdue,
    );
  }

  /** The cached figures, read again when older than CACHE_MS; undefined when the database failed. */
  private snapshot(): Promise<JobsSnapshot | undefined> {
    if (this.last && this.now() - this.last.at < CACHE_MS)
      return Promise.resolve(this.last.snapshot);
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<JobsSnapshot | undefined> {
    let snapshot: JobsSnapshot | undefined;
    try {
      const r = await within(readJobsSnapshot(this.db), QUERY_TIMEOUT_MS);
      if (r.done) snapshot = r.value;
      else this.logger.warn(`/metrics: the database did not answer within ${QUERY_TIMEOUT_MS} ms`);
    } catch (err) {
      this.logger.warn({ err: errorText(err) }, '/metrics: could not read the job figures');
    }
    this.last = { at: this.now(), snapshot };
    return snapshot;
  }

  handler(): RequestHandler {
    return (_req, res, next) => {
      this.registry.metrics().then((text) => {
        res.type(this.registry.contentType).send(text);
      }, next);
    };
  }
}

/**
 * Who may scrape the web's /metrics: anyone who reaches it when neither
 * CRONQ_API_TOKEN nor CRONQ_METRICS_TOKEN is set (the web is then bound to
 * loopback, and the Host check has run), otherwise a request carrying
 * either one (`Authorization: Bearer`, or Basic as on every page), so a
 * Prometheus server needs only the metrics token, never the API's.
 */
export function requireMetricsToken(tokens: ReadonlyArray<string | undefined>): RequestHandler {
  const accepted = tokens.filter((t): t is string => t !== undefined);
  return (req: Request, _res, next) => {
    if (accepted.length === 0) return next();
    const cred = credentialsOf(req);
    if (cred && accepted.some((t) => tokenMatches(t, cred.secret))) return next();
    next(
      new HttpError(
        401,
        cred ? 'the token is wrong' : 'send Authorization: Bearer <CRONQ_METRICS_TOKEN>',
      ),
    );
  };
}
