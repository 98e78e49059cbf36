import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AmqpConnection, ConfirmPublisher } from '../core/amqp';
import { exponentialBackoff, sleep } from '../core/async';
import type { Logger } from '../core/logger';
import type { ResultMessage } from '../core/messages';
import type { MessageSigner } from '../core/signing';
import { EXCHANGE, RESULTS_ROUTING_KEY } from '../core/topology';

interface Entry {
  /** Stable per run and type (heartbeats: per beat), so a republish is recognisable as the same message. */
  messageId: string;
  body: Buffer;
  runId: string;
  type: ResultMessage['type'];
  inFlight: boolean;
  waiters: Array<() => void>;
}

/**
 * A spill file name carries the pid that owns it, so a later runner can tell
 * an orphan from a live runner's: `results-<pid>-<rand>.jsonl` as written,
 * `adopting-<pid>-results-...` while a runner publishes another's file (it
 * is deleted only once every result in it is confirmed).
 */
const SPILL_RE = /^(?:adopting-(\d+)-)?results-(\d+)-[0-9a-f]+\.jsonl$/;

function ownerPid(name: string): number | undefined {
  const m = SPILL_RE.exec(name);
  if (!m) return undefined;
  return Number(m[1] ?? m[2]);
}

/**
 * Every result the runner sends goes through here. Results are published
 * with confirms, in the order they were sent; those not yet confirmed stay
 * in the buffer and are published again, in order, once the broker is back
 * (AmqpConnection reconnects by itself). A republish after a confirm that
 * never came is harmless: the message id is the same (run id + type), and
 * the results side writes each (run, type) once.
 *
 * Bounded: a heartbeat replaces an unsent heartbeat of the same run, and
 * when the buffer is over its byte limit the oldest unsent heartbeats are
 * dropped (they only say "still alive"); `overLimit` tells the runner to take
 * no new jobs until it drains. While the broker is away no new run starts
 * (no delivery arrives), so what can pile up is bounded by the runs already
 * going.
 *
 * On stop, results still unconfirmed after the flush grace are written to a
 * spill file under the buffer folder; the next runner started with the same
 * folder publishes them first.
 */
export class ResultOutbox {
  private readonly queue: Entry[] = [];
  private bytes = 0;
  private recovering = false;
  private broken = false;
  private stopped = false;
  private dropped = 0;
  private overLimitLogged = false;
  private readonly backoff = exponentialBackoff(200, 5000);
  private idleWaiters: Array<() => void> = [];
  private readonly abort = new AbortController();
  published = 0;
  /** Spill files being published; removed once all their results are confirmed. */
  private readonly adopted = new Set<string>();

  constructor(
    private readonly publisher: ConfirmPublisher,
    private readonly connection: AmqpConnection,
    private readonly opts: {
      dir: string;
      maxBytes: number;
      logger: Logger;
      /** Signs each result as it is published (docs/security.md). */
      signer?: MessageSigner;
    },
  ) {}

  /** Load results spilled by runners that are no longer alive, ahead of anything new. */
  async start(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true });
    const names = (await readdir(this.opts.dir)).filter((n) => SPILL_RE.test(n)).sort();
    for (const name of names) {
      const pid = ownerPid(name)!;
      if (pid !== process.pid && isAlive(pid)) continue;
      const file = path.join(this.opts.dir, name);
      // Rename first, so two runners starting at once cannot both adopt it.
      const mine = path.join(
        this.opts.dir,
        `adopting-${process.pid}-${name.replace(/^(adopting-\d+-)+/, '')}`,
      );
      try {
        await rename(file, mine);
      } catch {
        continue;
      }
      const lines = (await readFile(mine, 'utf8')).split('\n').filter((l) => l.trim() !== '');
      const confirmed: Array<Promise<void>> = [];
      for (const line of lines) {
        try {
          const rec = JSON.parse(line) as {
            messageId: string;
            runId: string;
            type: ResultMessage['type'];
            body: string;
          };
          confirmed.push(
            new Promise<void>((resolve) =>
              this.push({
                messageId: rec.messageId,
                runId: rec.runId,
                type: rec.type,
                body: Buffer.from(rec.body, 'utf8'),
                inFlight: false,
                waiters: [resolve],
              }),
            ),
          );
        } catch {
          this.opts.logger.warn(
            { file: name },
            'skipping an unreadable line of a result spill file',
          );
        }
      }
      // The file goes only when all its results are confirmed, so a crash now loses nothing.
      this.adopted.add(mine);
      void Promise.all(confirmed).then(async () => {
        if (!this.adopted.delete(mine)) return;
        await unlink(mine).catch(() => undefined);
      });
      this.opts.logger.info(
        { file: name, results: confirmed.length },
        'publishing results a previous runner could not deliver',
      );
    }
    this.kick();
  }

  /** Queue a result; resolves when the broker has confirmed it. */
  send(msg: ResultMessage, messageId: string): Promise<void> {
    const body = Buffer.from(JSON.stringify(msg));
    return new Promise((resolve) => {
      if (msg.type === 'heartbeat') {
        const old = this.queue.find(
          (e) => e.type === 'heartbeat' && e.runId === msg.run_id && !e.inFlight,
        );
        if (old) {
          // A newer beat says all the older one did.
          this.bytes += body.length - old.body.length;
          old.body = body;
          old.messageId = messageId;
          old.waiters.push(resolve);
          return;
        }
      }
      this.push({
        messageId,
        runId: msg.run_id,
        type: msg.type,
        body,
        inFlight: false,
        waiters: [resolve],
      });
      this.enforceLimit();
      this.kick();
    });
  }

  private push(e: Entry): void {
    this.queue.push(e);
    this.bytes += e.body.length;
  }

  private enforceLimit(): void {
    if (this.bytes <= this.opts.maxBytes) {
      this.overLimitLogged = false;
      return;
    }
    for (let i = 0; i < this.queue.length && this.bytes > this.opts.maxBytes;) {
      const e = this.queue[i]!;
      if (e.type === 'heartbeat' && !e.inFlight) {
        this.queue.splice(i, 1);
        this.bytes -= e.body.length;
        this.dropped += 1;
        for (const w of e.waiters) w();
      } else i += 1;
    }
    if (this.bytes > this.opts.maxBytes && !this.overLimitLogged) {
      this.overLimitLogged = true;
      this.opts.logger.error(
        { bytes: this.bytes, limit: this.opts.maxBytes },
        'result buffer is over its limit; taking no new jobs until it drains',
      );
    }
  }

  get overLimit(): boolean {
    return this.bytes > this.opts.maxBytes;
  }

  get size(): number {
    return this.queue.length;
  }

  status(): Record<string, unknown> {
    return {
      buffered: this.queue.length,
      bufferedBytes: this.bytes,
      published: this.published,
      droppedHeartbeats: this.dropped,
      brokerAway: this.broken,
    };
  }

  /**
   * While the broker is reachable, every result is published the moment it
   * is sent (one channel keeps publish order). After a failure nothing new
   * is published until `recover` has waited for the connection and sent the
   * whole unconfirmed backlog again from its head, so order is kept across
   * an outage.
   */
  private kick(): void {
    if (this.stopped) return;
    if (this.broken) {
      this.recover();
      return;
    }
    for (const e of this.queue) if (!e.inFlight) this.publishOne(e);
  }

  private recover(): void {
    if (this.recovering || this.stopped) return;
    this.recovering = true;
    void (async () => {
      let attempt = 0;
      try {
        while (this.broken && !this.stopped) {
          await sleep(this.backoff.delay(attempt++), this.abort.signal);
          if (this.stopped) return;
          await this.connection.connection().catch(() => undefined);
          if (this.stopped || !this.connection.isConnected) continue;
          this.broken = false;
          for (const e of this.queue) if (!e.inFlight) this.publishOne(e);
        }
      } catch (err) {
        this.opts.logger.error(
          { err: (err as Error).message },
          'result republish loop failed; retrying',
        );
      } finally {
        this.recovering = false;
        if (this.broken && !this.stopped) this.recover();
      }
    })();
  }

  private publishOne(e: Entry): void {
    e.inFlight = true;
    this.publisher
      .publish(EXCHANGE, RESULTS_ROUTING_KEY, e.body, {
        // Signed at each publish, so a result kept through an outage is signed when it is finally sent.
        ...(this.opts.signer ? { headers: this.opts.signer.sign('result', e.runId, e.body) } : {}),
        messageId: e.messageId,
        // A heartbeat only matters while fresh; losing one in a broker restart is harmless, so it skips the disk.
        persistent: e.type !== 'heartbeat',
        contentType: 'application/json',
        type: e.type,
      })
      .then(
        () => {
          const i = this.queue.indexOf(e);
          if (i !== -1) this.queue.splice(i, 1);
          this.bytes -= e.body.length;
          this.published += 1;
          for (const w of e.waiters) w();
          if (this.queue.length === 0) this.notifyIdle();
          if (this.overLimitLogged && !this.overLimit) this.overLimitLogged = false;
        },
        (err: unknown) => {
          e.inFlight = false;
          if (!this.broken)
            this.opts.logger.warn(
              { err: (err as Error).message, buffered: this.queue.length },
              'result not confirmed; keeping it to publish again when the broker is back',
            );
          this.broken = true;
        },
      )
      .finally(() => {
        if (this.broken) this.recover();
      });
  }

  private notifyIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Resolves when every queued result is confirmed, or after `timeoutMs`; true when drained. */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.queue.length === 0) return true;
    const drained = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([drained, timeout]);
    clearTimeout(timer);
    return this.queue.length === 0;
  }

  private async dropAdopted(): Promise<void> {
    for (const file of this.adopted) await unlink(file).catch(() => undefined);
    this.adopted.clear();
  }

  /** Stop publishing; write what is still unconfirmed to a spill file for the next runner. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    if (this.queue.length === 0) {
      await this.dropAdopted();
      return;
    }
    const name = `results-${process.pid}-${randomBytes(4).toString('hex')}.jsonl`;
    const lines = this.queue
      .map((e) =>
        JSON.stringify({
          messageId: e.messageId,
          runId: e.runId,
          type: e.type,
          body: e.body.toString('utf8'),
        }),
      )
      .join('\n');
    try {
      await mkdir(this.opts.dir, { recursive: true });
      await writeFile(path.join(this.opts.dir, name), lines + '\n');
      this.opts.logger.warn(
        { file: path.join(this.opts.dir, name), results: this.queue.length },
        'results not confirmed before stop were saved; the next runner start publishes them',
      );
      // Their unconfirmed results are in the new file now.
      await this.dropAdopted();
    } catch (err) {
      this.opts.logger.error(
        { err: (err as Error).message, results: this.queue.length },
        'could not save unconfirmed results; they are lost',
      );
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
