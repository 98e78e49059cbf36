import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { errorText } from '../error-text';
import type { Logger } from '../logger';
import { decideScrape, type ScrapeRules } from './scrape-rules';

export interface MetricsServerOptions {
  port: number;
  host: string;
  rules: ScrapeRules;
  registry: Registry;
  logger: Logger;
}

/** Bounds of a scrape: small headers, short timeouts, few connections. */
const LIMITS = {
  maxHeaderSize: 8 * 1024,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 32,
};

/**
 * A small HTTP server that answers GET /metrics with the registry's text
 * (scrape-rules.ts says who may). Scrapes that arrive while one is being
 * collected share its text, so a burst of them costs one collection.
 */
export class MetricsServer {
  private server: http.Server | undefined;
  private collecting: Promise<string> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: MetricsServerOptions) {}

  async start(): Promise<void> {
    const server = http.createServer({ maxHeaderSize: LIMITS.maxHeaderSize }, (req, res) =>
      this.answer(req, res),
    );
    server.headersTimeout = LIMITS.headersTimeoutMs;
    server.requestTimeout = LIMITS.requestTimeoutMs;
    server.keepAliveTimeout = LIMITS.keepAliveTimeoutMs;
    server.maxConnections = LIMITS.maxConnections;
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error) =>
        reject(
          new Error(`cannot serve /metrics on ${this.opts.host}:${this.opts.port}: ${err.message}`),
        );
      server.once('error', failed);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', failed);
        resolve();
      });
    });
    this.server = server;
    const a = this.address();
    this.opts.logger.info(
      { host: a?.address, port: a?.port, token: this.opts.rules.token ? 'required' : 'none' },
      'serving /metrics',
    );
  }

  address(): AddressInfo | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const server = this.server;
      if (!server) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // A scrape is short: nothing in flight is worth waiting for at shutdown.
      server.closeAllConnections();
      await closed;
    })();
    return this.stopping;
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const decision = decideScrape(
      {
        method: req.method,
        url: req.url,
        host: req.headers.host,
        authorization: req.headers.authorization,
        hasBody:
          Number(req.headers['content-length'] ?? 0) > 0 ||
          req.headers['transfer-encoding'] !== undefined,
        localPort: req.socket.localPort,
      },
      this.opts.rules,
    );
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (!decision.serve) {
      if (decision.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
      if (decision.status === 405) res.setHeader('Allow', 'GET, HEAD');
      // A body is never read: the connection is not reused after a refusal that left one unread.
      if (decision.status === 400) res.setHeader('Connection', 'close');
      res.writeHead(decision.status, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`${decision.message}\n`);
      return;
    }
    this.collect().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': this.opts.registry.contentType });
        res.end(decision.head ? undefined : text);
      },
      (err: unknown) => {
        this.opts.logger.warn({ err: errorText(err) }, 'could not collect metrics');
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('could not collect metrics\n');
      },
    );
  }

  private collect(): Promise<string> {
    this.collecting ??= this.opts.registry.metrics().finally(() => {
      this.collecting = undefined;
    });
    return this.collecting;
  }
}
