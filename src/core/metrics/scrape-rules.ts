import { tokenMatches } from '../../web/auth';
import { hostAllowed, type HostRule } from '../../web/host-check';

/**
 * Who may read /metrics of a daemon, and what a scrape may look like: the
 * web's rules (src/web/auth.ts, host-check.ts) on a server that answers one
 * thing. Pure, so every refusal is tested without a socket.
 *
 * - Only `GET` or `HEAD` of `/metrics` (a query string is ignored), without
 *   a body: anything else is refused before any work is done.
 * - With a token: `Authorization: Bearer <token>` or 401. A browser never
 *   adds that header by itself, so a page the operator opens cannot read
 *   the metrics whatever name it resolves to this address.
 * - Without a token the server is bound to loopback (checked at start) and
 *   the Host must be one of its own names (the web's DNS-rebinding rule),
 *   or 421.
 */

export interface ScrapeRequest {
  method: string | undefined;
  url: string | undefined;
  host: string | undefined;
  authorization: string | undefined;
  /** Content-Length above 0 or any Transfer-Encoding. */
  hasBody: boolean;
  /** The port the connection arrived at. */
  localPort: number | undefined;
}

export interface ScrapeRules {
  token: string | undefined;
  /** The web's host rules for this server's bind address (used when there is no token). */
  hosts: readonly HostRule[];
}

export type ScrapeDecision =
  | { serve: true; head: boolean }
  | { serve: false; status: 400 | 401 | 404 | 405 | 421; message: string };

export const METRICS_PATH = '/metrics';
/** Longest Authorization header looked at (a bearer token of any sane length fits). */
const MAX_AUTHORIZATION = 1024;

export function decideScrape(req: ScrapeRequest, rules: ScrapeRules): ScrapeDecision {
  const path = (req.url ?? '').split('?')[0];
  if (path !== METRICS_PATH)
    return { serve: false, status: 404, message: 'only /metrics is served here' };
  if (req.method !== 'GET' && req.method !== 'HEAD')
    return { serve: false, status: 405, message: 'use GET /metrics' };
  if (req.hasBody) return { serve: false, status: 400, message: 'a scrape has no body' };
  if (rules.token !== undefined) {
    const given = bearerOf(req.authorization);
    if (given === undefined || !tokenMatches(rules.token, given))
      return {
        serve: false,
        status: 401,
        message: given === undefined ? 'send Authorization: Bearer <token>' : 'the token is wrong',
      };
  } else if (!hostAllowed(rules.hosts, req.host, req.localPort)) {
    return { serve: false, status: 421, message: 'this server does not answer for that Host' };
  }
  return { serve: true, head: req.method === 'HEAD' };
}

function bearerOf(header: string | undefined): string | undefined {
  if (header === undefined || header.length > MAX_AUTHORIZATION) return undefined;
  const m = /^bearer\s+(\S+)\s*$/i.exec(header.trim());
  return m ? m[1] : undefined;
}
