import type { ErrorRequestHandler, RequestHandler } from 'express';
import {
  BrokerUnavailableError,
  CronqError,
  NotFoundError,
  ValidationError,
  isTransientDbError,
} from '../core/errors';
import { errorText } from '../core/error-text';
import type { Logger } from '../core/logger';

/**
 * The ONE place where errors become HTTP answers. Routes throw CronqErrors
 * (or let body-parser's and the database's errors through); this maps them
 * to a status and answers JSON under /api and a page elsewhere.
 */

/** A refusal that only the web has: not signed in, forbidden, wrong media type. */
export class HttpError extends CronqError {
  constructor(
    readonly status: number,
    message: string,
    /** More fields of the JSON error (e.g. a run's `status` with a 409). */
    readonly detail?: Readonly<Record<string, string | number | boolean | null>>,
  ) {
    super(message);
  }
}

export interface HttpProblem {
  status: number;
  message: string;
  problems?: ReadonlyArray<{ path: string; message: string }>;
  detail?: Readonly<Record<string, string | number | boolean | null>>;
}

interface BodyParserError {
  type?: string;
  status?: number;
  expose?: boolean;
  message: string;
}

export function problemOf(err: unknown): HttpProblem {
  if (err instanceof ValidationError)
    return { status: 400, message: err.message, problems: err.problems };
  if (err instanceof NotFoundError) return { status: 404, message: err.message };
  if (err instanceof HttpError)
    return { status: err.status, message: err.message, detail: err.detail };
  // Kill and live output need the broker; pages and reads do not (docs/web.md).
  if (err instanceof BrokerUnavailableError) return { status: 503, message: 'broker unavailable' };
  // Express throws URIError when a route parameter has a malformed % escape (/job/%E0%A4%A).
  if (err instanceof URIError)
    return {
      status: 400,
      message: 'the URL has a malformed % escape (not UTF-8 percent-encoding)',
    };
  const bp = err as BodyParserError;
  switch (bp?.type) {
    case 'entity.too.large':
      return {
        status: 413,
        message: 'request body is larger than the limit (CRONQ_API_BODY_LIMIT)',
      };
    case 'entity.parse.failed':
      return { status: 400, message: `malformed JSON body: ${bp.message}` };
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return { status: 415, message: bp.message };
    case 'request.aborted':
      return { status: 400, message: 'request aborted' };
    default:
      break;
  }
  if (isTransientDbError(err))
    return { status: 503, message: 'the database is not reachable right now; try again shortly' };
  if (typeof bp?.status === 'number' && bp.status >= 400 && bp.status < 500 && bp.expose)
    return { status: bp.status, message: bp.message };
  return { status: 500, message: 'internal error' };
}

/** Longest error message a log line carries. */
export const LOGGED_MESSAGE_CHARS = 200;

/**
 * An error as the web logs it: its class, code and the SQL-free text of
 * core/error-text.ts (a knex error's message starts with the statement with
 * its values filled in, which would carry commands, names and descriptions
 * into the log), and the stack frames without the message line, which
 * repeats that text.
 */
export function errorForLog(err: unknown): Record<string, unknown> {
  const e = (err ?? {}) as Partial<Error> & { code?: unknown; errno?: unknown; sqlState?: unknown };
  const out: Record<string, unknown> = {
    err: errorText(err, LOGGED_MESSAGE_CHARS),
    class: e.name ?? typeof err,
  };
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code;
  if (typeof e.errno === 'number') out.errno = e.errno;
  if (typeof e.sqlState === 'string') out.sqlState = e.sqlState;
  if (typeof e.stack === 'string')
    out.stack = e.stack
      .split('\n')
      .filter((l) => /^\s+at /.test(l))
      .slice(0, 12)
      .join('\n');
  return out;
}

/** Express error handler: JSON for /api (and JSON clients), an error page otherwise. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const p = problemOf(err);
    if (p.status >= 500)
      logger.error(
        { ...errorForLog(err), method: req.method, path: req.path.slice(0, 200) },
        'request failed',
      );
    else
      logger.debug(
        { status: p.status, message: p.message, method: req.method, path: req.path },
        'request refused',
      );
    if (p.status === 401) res.set('WWW-Authenticate', 'Basic realm="cronq", charset="UTF-8"');
    if (wantsJson(req.path, req.get('accept'))) {
      const error: Record<string, unknown> = { ...p.detail, message: p.message };
      if (p.problems) error.problems = p.problems;
      res.status(p.status).json({ error });
      return;
    }
    res.status(p.status);
    res.locals.title = `${p.status}`;
    res.render(
      'error',
      { status: p.status, message: p.message, problems: p.problems ?? [] },
      (renderErr, html) => {
        if (renderErr) res.type('text/plain').send(`${p.status} ${p.message}\n`);
        else res.type('html').send(html);
      },
    );
  };
}

function wantsJson(path: string, accept: string | undefined): boolean {
  if (path === '/api' || path.startsWith('/api/')) return true;
  return !!accept && accept.includes('application/json') && !accept.includes('text/html');
}

/** Last route: nothing matched. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`no such page: ${req.method} ${req.path}`));
};
