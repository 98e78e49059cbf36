import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { hasValidBearer } from './auth';
import { HttpError } from './errors';

/**
 * Cross-site request forgery defence for every non-GET request:
 * - a foreign Origin (or, without Origin, a foreign Referer) is refused;
 * - a form POST must carry `_csrf`, an HMAC of an issue time under a
 *   per-process secret (stateless, so no session store; valid 12 hours);
 * - API writes must be `application/json`, which a cross-site form cannot
 *   send without a CORS preflight (and we answer none).
 * A request with a valid Bearer token is exempt: browsers never attach one
 * on their own, unlike cookies or cached Basic credentials.
 */

const TOKEN_TTL_MS = 12 * 3600 * 1000;
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export class CsrfTokens {
  private readonly secret: Buffer;

  constructor(
    secret: Buffer = randomBytes(32),
    private readonly now: () => number = Date.now,
  ) {
    this.secret = secret;
  }

  private mac(ts: string): string {
    return createHmac('sha256', this.secret).update(`csrf:${ts}`).digest('base64url');
  }

  issue(): string {
    const ts = this.now().toString(36);
    return `${ts}.${this.mac(ts)}`;
  }

  verify(token: unknown): boolean {
    if (typeof token !== 'string') return false;
    const dot = token.indexOf('.');
    if (dot <= 0) return false;
    const ts = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1));
    const want = Buffer.from(this.mac(ts));
    if (given.length !== want.length || !timingSafeEqual(given, want)) return false;
    const age = this.now() - parseInt(ts, 36);
    return age >= -60_000 && age <= TOKEN_TTL_MS;
  }
}

function originOf(url: string | undefined): string | null {
  if (!url) return null;
  try {
    return new URL(url).origin;
  } catch {
    return 'invalid';
  }
}

function sameOrigin(req: Request): boolean {
  const host = req.get('host');
  if (!host) return false;
  const claimed = req.get('origin') ?? undefined;
  const from =
    claimed !== undefined && claimed !== 'null'
      ? originOf(claimed)
      : claimed === 'null'
        ? 'null'
        : originOf(req.get('referer'));
  if (from === null) return true; // neither header: not a browser (curl, scripts); the token/content-type rules still apply
  return from === `http://${host}` || from === `https://${host}`;
}

export function csrfProtection(tokens: CsrfTokens): RequestHandler {
  return (req, _res, next) => {
    if (SAFE.has(req.method) || hasValidBearer(req)) {
      next();
      return;
    }
    if (!sameOrigin(req)) {
      next(new HttpError(403, 'cross-site request refused (Origin does not match this site)'));
      return;
    }
    const isApi = req.path === '/api' || req.path.startsWith('/api/');
    if (isApi) {
      if (!/^application\/([\w.+-]*\+)?json\s*(;|$)/i.test(req.get('content-type') ?? '')) {
        next(new HttpError(415, 'API writes must be sent as Content-Type: application/json'));
        return;
      }
      next();
      return;
    }
    const body = req.body as Record<string, unknown> | undefined;
    if (!tokens.verify(body?._csrf)) {
      next(
        new HttpError(
          403,
          'the form has expired or did not come from this site; reload the page and try again',
        ),
      );
      return;
    }
    next();
  };
}
