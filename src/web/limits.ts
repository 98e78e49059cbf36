import type { Request, RequestHandler } from 'express';
import { HttpError } from './errors';

/**
 * Per-client limits, so one client cannot take the process or the database
 * pool from the others. Clients are told apart by their socket address (a
 * reverse proxy makes all its clients one; that is the proxy's job to limit).
 * Both maps are bounded: when full, the oldest entry is dropped, so a flood
 * from many addresses costs at most `maxClients` small entries.
 */

const DEFAULT_MAX_CLIENTS = 10_000;

function clientOf(req: Request): string {
  return req.socket?.remoteAddress ?? 'unknown';
}

/** A token bucket per client: `ratePerSecond` refill, `burst` capacity. */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly maxClients = DEFAULT_MAX_CLIENTS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token; false when the client has none left. */
  take(client: string): boolean {
    const t = this.now();
    let b = this.buckets.get(client);
    if (b) {
      this.buckets.delete(client); // re-inserted below: the Map's order is least recently seen first
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.ratePerSecond);
      b.at = t;
    } else {
      b = { tokens: this.burst, at: t };
      if (this.buckets.size >= this.maxClients)
        this.buckets.delete(this.buckets.keys().next().value as string);
    }
    this.buckets.set(client, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }
}

export function rateLimit(buckets: TokenBuckets, ratePerSecond: number): RequestHandler {
  return (req, res, next) => {
    if (buckets.take(clientOf(req))) {
      next();
      return;
    }
    res.set('Retry-After', String(Math.max(1, Math.ceil(1 / ratePerSecond))));
    next(new HttpError(429, 'too many requests from this address; slow down'));
  };
}

/**
 * At most `perClient` requests of one client run at once; up to `queue`
 * more wait their turn (a browser's parallel requests still get through);
 * beyond that the request is refused with 429. With the database pool
 * larger than `perClient`, no single client can hold every connection.
 */
export class ClientGate {
  private readonly clients = new Map<string, { running: number; waiting: Array<() => void> }>();

  constructor(
    private readonly perClient: number,
    private readonly queue: number,
  ) {}

  middleware(): RequestHandler {
    return (req, res, next) => {
      const client = clientOf(req);
      let c = this.clients.get(client);
      if (!c) {
        c = { running: 0, waiting: [] };
        this.clients.set(client, c);
      }
      const entry = c;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        const wake = entry.waiting.shift();
        if (wake) wake();
        else {
          entry.running -= 1;
          if (entry.running === 0) this.clients.delete(client);
        }
      };
      const start = () => {
        res.once('finish', release);
        res.once('close', release);
        next();
      };
      if (entry.running < this.perClient) {
        entry.running += 1;
        start();
        return;
      }
      if (entry.waiting.length >= this.queue) {
        res.set('Retry-After', '1');
        next(new HttpError(429, 'too many requests in progress from this address; slow down'));
        return;
      }
      const wait = () => start();
      entry.waiting.push(wait);
      // A client that hangs up while waiting gives its place back.
      res.once('close', () => {
        const i = entry.waiting.indexOf(wait);
        if (i >= 0) entry.waiting.splice(i, 1);
      });
    };
  }

  /** Clients with requests running (for tests and status). */
  get size(): number {
    return this.clients.size;
  }
}
