import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { hasValidBearer } from './auth';
import { HttpError } from './errors';
import { hostAllowed, localPortOf, type HostRule } from './host-check';

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

/**
 * Whether the page that sent the request is one of ours: its Origin (or,
 * without one, its Referer) must name an allowed host, by the same rule as
 * the Host header. Not compared with Host itself: under DNS rebinding both
 * name the attacker's site.
 */
function fromAllowedSite(req: Request, rules: readonly HostRule[]): boolean {
  const origin = req.get('origin');
  const claimed = origin ?? req.get('referer');
  if (claimed === undefined) return true; // neither header: not a browser (curl, scripts); the token/content-type rules still apply
  let url: URL;
  try {
    url = new URL(claimed);
  } catch {
    return false; // "null" (sandboxed frames, file:) and garbage
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (url.username !== '' || url.password !== '') return false;
  return hostAllowed(rules, url.host, localPortOf(req), url.protocol === 'https:' ? 443 : 80);
}

export function csrfProtection(tokens: CsrfTokens, rules: readonly HostRule[]): RequestHandler {
  return (req, _res, next) => {
    if (SAFE.has(req.method) || hasValidBearer(req)) {
      next();
      return;
    }
    if (!fromAllowedSite(req, rules)) {
      next(
        new HttpError(
          403,
          'cross-site request refused (Origin is not one of the hosts this server answers for)',
        ),
      );
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
