import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Service } from '../core/lifecycle';
import type { Logger } from '../core/logger';
import { createApp, type WebDeps } from './app';

/**
 * The HTTP server around the app: start() listens, stop() stops accepting,
 * lets requests in flight finish (up to `graceMs`), then cuts what is left.
 * The database passed in is not closed here (whoever opened it closes it).
 */
export class WebServer implements Service {
  private server: http.Server | undefined;
  private stopping: Promise<void> | undefined;
  private readonly logger: Logger;

  constructor(
    private readonly deps: WebDeps,
    private readonly listen: { port: number; host: string },
    private readonly graceMs = 5000,
  ) {
    this.logger = deps.logger;
  }

  async start(): Promise<void> {
    const server = http.createServer(createApp(this.deps));
    server.keepAliveTimeout = 5000;
    server.headersTimeout = 15_000;
    server.requestTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listen.port, this.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
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
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        this.logger.warn(
          'requests still running after the grace period: closing their connections',
        );
        server.closeAllConnections();
      }, this.graceMs);
      await closed;
      clearTimeout(timer);
    })();
    return this.stopping;
  }

  status(): Record<string, unknown> {
    const a = this.address();
    return { listening: !!a && !this.stopping, port: a?.port, host: a?.address };
  }
}
