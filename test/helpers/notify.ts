/**
 * A webhook receiver and an SMTP server started by the test (real sockets,
 * real HTTP and SMTP), for the notification tests.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { verifyBody } from '../../src/core/notify/signature';

/** A notification body as docs/notifications.md describes it. */
export interface NotifyBody {
  event: string;
  notification_id: number;
  failures: number;
  job: { id: number; category: string | null; name: string | null; url: string | null };
  run: {
    id: string;
    status: string;
    return_code: number | null;
    host: string | null;
    attempt: number;
    url: string | null;
  } | null;
  output_tail: string | null;
  text?: string;
  overdue?: { alert_after_seconds: number | null };
}

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: NotifyBody;
  /** Whether the signature checked out with the receiver's secret (null: no secret given). */
  signed: boolean | null;
  status: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** The status to answer for a path: called with how many requests that path had before. */
  respond(path: string, fn: (n: number) => number): void;
  close(): Promise<void>;
}

export async function startReceiver(secret?: string): Promise<Receiver> {
  const received: Received[] = [];
  const responders = new Map<string, (n: number) => number>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = req.url ?? '/';
      const before = received.filter((r) => r.path === path).length;
      const status = responders.get(path)?.(before) ?? 200;
      const signed =
        secret === undefined
          ? null
          : verifyBody(
              secret,
              String(req.headers['x-cronq-timestamp'] ?? ''),
              body,
              String(req.headers['x-cronq-signature'] ?? ''),
              Math.floor(Date.now() / 1000),
            );
      let json = {} as NotifyBody;
      try {
        json = JSON.parse(body) as NotifyBody;
      } catch {
        // kept as text
      }
      received.push({ path, headers: req.headers, body, json, signed, status });
      res.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    respond: (path, fn) => responders.set(path, fn),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface Mail {
  from: string;
  to: string[];
  raw: string;
}

export interface SmtpSink {
  url: string;
  mails: Mail[];
  close(): Promise<void>;
}

/** A real SMTP server on a loopback port that keeps every mail it is given. */
export async function startSmtp(): Promise<SmtpSink> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
