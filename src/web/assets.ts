import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { RequestHandler } from 'express';

/**
 * The admin's static files (public/): read and compressed once at start
 * (they are a few kilobytes, shipped with the package), each served at a
 * URL carrying a hash of its content, `/static/<hash>/<name>`, cached by
 * the browser for a year, since a changed file gets a new URL. Pages name
 * them through `asset(name)`. `/static/<name>` still answers (an hour's
 * cache) for links written before the hash. A hash that is not the
 * current one (a page from the process before an upgrade) gets the current
 * file with a short cache instead of a 404 that would unstyle the page.
 * brotli or gzip as the browser accepts; HTML pages stay no-store.
 */

interface Asset {
  hash: string;
  type: string;
  raw: Buffer;
  gzip: Buffer;
  br: Buffer;
}

const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};
/** Files of public/ served: plain names with a known type, at most this large. */
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const MAX_BYTES = 1 << 20;
const YEAR = 'public, max-age=31536000, immutable';
const HOUR = 'public, max-age=3600';
const MINUTE = 'public, max-age=60';

export class StaticAssets {
  private readonly files = new Map<string, Asset>();

  constructor(dir: string) {
    for (const name of readdirSync(dir)) {
      const type = TYPES[path.extname(name)];
      const file = path.join(dir, name);
      if (!type || !NAME.test(name) || !statSync(file).isFile()) continue;
      const raw = readFileSync(file);
      if (raw.length > MAX_BYTES) throw new Error(`public/${name} is larger than 1 MiB`);
      this.files.set(name, {
        hash: createHash('sha256').update(raw).digest('hex').slice(0, 16),
        type,
        raw,
        gzip: gzipSync(raw, { level: 9 }),
        br: brotliCompressSync(raw, {
          params: {
            [constants.BROTLI_PARAM_QUALITY]: 11,
            [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
          },
        }),
      });
    }
  }

  /** The URL of public/<name> with its content hash; an unknown name is a bug in a view. */
  url(name: string): string {
    const a = this.files.get(name);
    if (!a) throw new Error(`no static file public/${name}`);
    return `/static/${a.hash}/${name}`;
  }

  /** GET/HEAD /static/<hash>/<name> and /static/<name>; anything else under /static is 404. */
  handler(): RequestHandler {
    return (req, res, next) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return next();
      const m = /^\/(?:([0-9a-f]{16})\/)?([^/]+)$/.exec(req.path);
      const asset = m ? this.files.get(m[2]!) : undefined;
      if (!m || !asset) return next();
      const cache = m[1] === undefined ? HOUR : m[1] === asset.hash ? YEAR : MINUTE;
      const accepts = String(req.headers['accept-encoding'] ?? '');
      const [body, encoding] = accepted(accepts, 'br')
        ? [asset.br, 'br']
        : accepted(accepts, 'gzip')
          ? [asset.gzip, 'gzip']
          : [asset.raw, undefined];
      res.set({
        'Content-Type': asset.type,
        'Cache-Control': cache,
        Vary: 'Accept-Encoding',
        'Content-Length': String(body.length),
      });
      if (encoding) res.set('Content-Encoding', encoding);
      res.status(200).end(req.method === 'HEAD' ? undefined : body);
    };
  }
}

/** Whether Accept-Encoding lists `coding` without q=0. */
export function accepted(header: string, coding: string): boolean {
  return header
    .slice(0, 512)
    .split(',')
    .some((part) => {
      const [name, ...params] = part.trim().toLowerCase().split(';');
      if (name !== coding) return false;
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return q === undefined || Number(q.slice(2)) > 0;
    });
}
