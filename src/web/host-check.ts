import type { Request, RequestHandler } from 'express';
import { HttpError } from './errors';

/**
 * DNS rebinding defence: the web answers only requests whose Host names it.
 * A page on evil.example whose name is made to resolve to 127.0.0.1 reaches
 * the loopback listener from the operator's own browser, but its requests
 * carry `Host: evil.example:<port>`, which is refused here before any route
 * runs (with or without a token).
 *
 * Allowed: localhost, 127.0.0.1, [::1] and the LISTEN_INTERFACE address, on
 * the port the request actually arrived at (a browser sends the port it
 * connected to); plus each CRONQ_ALLOWED_HOSTS entry, as `name` (any port,
 * for a reverse proxy that keeps the public Host) or `name:port`.
 * Names are compared exactly after lower-casing: no trailing dot, no
 * userinfo, no suffix tricks (`localhost.evil.example`).
 */

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
/** Wildcard binds name no host a browser could use. */
const WILDCARD_BINDS = new Set(['0.0.0.0', '::', '[::]']);

export interface HostRule {
  host: string;
  /** undefined: any port. */
  port: number | undefined;
}

export interface ParsedHost {
  host: string;
  port: number | undefined;
}

/**
 * `name[:port]` or `[ipv6][:port]`, lower-cased; IPv6 literals in their
 * canonical form (so `[0:0::1]` is `[::1]`). Null for anything else
 * (userinfo, paths, empty labels, a trailing dot, a port out of range).
 */
export function parseHostHeader(value: string | undefined): ParsedHost | null {
  if (value === undefined) return null;
  const m =
    /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::(\d{1,5}))?$/.exec(
      value,
    );
  if (!m) return null;
  let host = m[1]!.toLowerCase();
  if (host.startsWith('[')) {
    try {
      host = new URL(`http://${host}/`).hostname;
    } catch {
      return null;
    }
  }
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return null;
  return { host, port };
}

/** The allowed list as configured: loopback names, the bound address, CRONQ_ALLOWED_HOSTS. */
export function hostRules(listenInterface: string, allowedHosts: readonly string[]): HostRule[] {
  const rules: HostRule[] = LOOPBACK_NAMES.map((host) => ({ host, port: -1 }));
  const bound = listenInterface.includes(':') ? `[${listenInterface}]` : listenInterface;
  const parsedBound = parseHostHeader(bound);
  if (parsedBound && !WILDCARD_BINDS.has(parsedBound.host))
    rules.push({ host: parsedBound.host, port: -1 });
  for (const entry of allowedHosts) {
    const p = parseHostHeader(entry);
    if (p) rules.push({ host: p.host, port: p.port });
  }
  return rules;
}

/**
 * Whether `value` (a Host header, or the host part of an Origin) is one of
 * ours. `localPort` is the port the connection arrived at; rules with port
 * -1 (the built-in names) accept only that port, or no port when it is 80.
 */
export function hostAllowed(
  rules: readonly HostRule[],
  value: string | undefined,
  localPort: number | undefined,
  defaultPort = 80,
): boolean {
  const p = parseHostHeader(value);
  if (!p) return false;
  const port = p.port ?? defaultPort;
  return rules.some((r) => {
    if (r.host !== p.host) return false;
    if (r.port === undefined) return true;
    if (r.port === -1) return localPort !== undefined && port === localPort;
    return port === r.port;
  });
}

export function localPortOf(req: Request): number | undefined {
  return req.socket?.localPort;
}

/** 421 before routing for a Host that is not ours. `exempt` paths (the health check) skip it. */
export function requireKnownHost(
  rules: readonly HostRule[],
  exempt: (path: string) => boolean,
): RequestHandler {
  return (req, _res, next) => {
    // One Host, and a path as the target: Node keeps only the first of several
    // Host headers and takes an absolute-form target (GET http://other/ HTTP/1.1)
    // beside a Host that says something else, so a proxy in front could route
    // by the one this check never read.
    const hosts = hostHeaderCount(req.rawHeaders);
    if (hosts > 1 || !req.originalUrl.startsWith('/')) {
      next(
        new HttpError(
          400,
          hosts > 1
            ? 'a request carries one Host header'
            : 'the request target must be a path (origin-form), not an absolute URL',
        ),
      );
      return;
    }
    if (exempt(req.path) || hostAllowed(rules, req.headers.host, localPortOf(req))) {
      next();
      return;
    }
    next(
      new HttpError(
        421,
        'this server does not answer for that Host; add the name to CRONQ_ALLOWED_HOSTS if it is meant to',
      ),
    );
  };
}

/** How many Host headers a request has (rawHeaders is name, value, name, value, ...). */
export function hostHeaderCount(rawHeaders: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === 'host') n++;
  return n;
}
