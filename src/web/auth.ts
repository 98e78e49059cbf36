import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { HttpError } from './errors';

/**
 * CRONQ_API_TOKEN: when set, every route but /_status needs
 * `Authorization: Bearer <token>` or HTTP Basic with the token as the
 * password (any user name), so both a CI script and a browser can sign in.
 * Compared in constant time over SHA-256 digests (equal lengths, no early
 * exit). The header is never logged.
 */

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export function tokenMatches(expected: string, given: string): boolean {
  return timingSafeEqual(digest(expected), digest(given));
}

export type Credentials = { scheme: 'bearer' | 'basic'; secret: string } | null;

export function credentialsOf(req: Request): Credentials {
  const h = req.get('authorization');
  if (!h) return null;
  const m = /^(\S+)\s+(.*)$/.exec(h.trim());
  if (!m) return null;
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'bearer') return { scheme: 'bearer', secret: m[2]!.trim() };
  if (scheme === 'basic') {
    const decoded = Buffer.from(m[2]!.trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return { scheme: 'basic', secret: colon >= 0 ? decoded.slice(colon + 1) : decoded };
  }
  return null;
}

/** Marks the request as carrying a valid bearer token (CSRF-exempt: browsers never add one by themselves). */
export function hasValidBearer(req: Request): boolean {
  return (req as Request & { cronqBearer?: boolean }).cronqBearer === true;
}

export function requireToken(token: string | undefined): RequestHandler {
  return (req, _res, next) => {
    if (token === undefined) {
      next();
      return;
    }
    const cred = credentialsOf(req);
    if (cred && tokenMatches(token, cred.secret)) {
      if (cred.scheme === 'bearer') (req as Request & { cronqBearer?: boolean }).cronqBearer = true;
      next();
      return;
    }
    next(
      new HttpError(
        401,
        cred
          ? 'the API token is wrong'
          : 'sign in: send Authorization: Bearer <CRONQ_API_TOKEN> (or HTTP Basic with the token as password)',
      ),
    );
  };
}
