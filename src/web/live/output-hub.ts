import {
  ResilientConsumer,
  withChannel,
  type AmqpConnection,
  type Delivery,
} from '../../core/amqp';
import { watchMessage, type ControlPublisher } from '../../core/control';
import { errorMessage } from '../../core/async';
import { BrokerUnavailableError } from '../../core/errors';
import { parseOutput, type OutputMessage } from '../../core/live/messages';
import { declareOutputQueue, OUTPUT_EXCHANGE } from '../../core/live/topology';
import type { Logger } from '../../core/logger';

/** How often a watch is renewed while a viewer is connected, and how far ahead it reaches. */
export const WATCH_RENEW_MS = 5000;
export const WATCH_AHEAD_MS = 20_000;
/** Live viewers one web process serves at once; more are answered 503. */
export const MAX_LIVE_VIEWERS = 100;

export interface LiveViewer {
  runId: string;
  /** A chunk or the end of the run; must not throw. */
  deliver(m: OutputMessage): void;
  /** The broker went away: the viewer is told and let go (nothing is kept for later). */
  lost(): void;
}

/**
 * The web's side of live output (docs/architecture.md). One queue of its
 * own on `cronq.output` (topology.ts: bounded, exclusive), bound to each
 * run a viewer of this process watches and unbound when the last leaves.
 * While a run has viewers, a watch order goes to the runners every
 * WATCH_RENEW_MS, reaching WATCH_AHEAD_MS ahead: when nobody watches, the
 * runner stops within that and nothing is sent.
 */
export class OutputHub {
  private readonly viewers = new Map<string, Set<LiveViewer>>();
  private readonly consumer: ResilientConsumer;
  private queue: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private count = 0;
  private bindings: Promise<void> = Promise.resolve();

  constructor(
    private readonly connection: AmqpConnection,
    private readonly control: ControlPublisher,
    private readonly logger: Logger,
  ) {
    this.consumer = new ResilientConsumer({
      connection,
      queue: '(live output)',
      prefetch: 100,
      logger,
      onDelivery: (d) => this.take(d),
      declare: async (_conn, ch) => {
        const q = await declareOutputQueue(ch);
        for (const runId of this.viewers.keys()) await ch.bindQueue(q, OUTPUT_EXCHANGE, runId);
        this.queue = q;
        return q;
      },
    });
    connection.on('disconnected', () => {
      this.queue = undefined;
      for (const set of [...this.viewers.values()]) for (const v of [...set]) v.lost();
    });
  }

  async start(): Promise<void> {
    await this.consumer.start();
    this.timer = setInterval(() => void this.renewAll(), WATCH_RENEW_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.consumer.stop();
    await this.consumer.close();
  }

  /** Whether a viewer can be served now (the broker is here and our queue consumed). */
  get available(): boolean {
    return this.control.available && this.queue !== undefined && this.consumer.consuming;
  }

  get viewerCount(): number {
    return this.count;
  }

  /**
   * Add a viewer: bind the run, send the first watch order. Throws
   * BrokerUnavailableError (nothing kept) when the broker is away.
   */
  async add(v: LiveViewer): Promise<void> {
    if (!this.available) throw new BrokerUnavailableError('broker unavailable');
    let set = this.viewers.get(v.runId);
    const first = !set;
    if (!set) this.viewers.set(v.runId, (set = new Set()));
    set.add(v);
    this.count += 1;
    try {
      if (first) await this.bind(v.runId, true);
      await this.renew(v.runId);
    } catch (err) {
      this.remove(v);
      throw err instanceof BrokerUnavailableError
        ? err
        : new BrokerUnavailableError('broker unavailable', { cause: err });
    }
  }

  remove(v: LiveViewer): void {
    const set = this.viewers.get(v.runId);
    if (!set?.delete(v)) return;
    this.count -= 1;
    if (set.size > 0) return;
    this.viewers.delete(v.runId);
    // No renewal from now on: the runner stops streaming when the last order runs out.
    void this.bind(v.runId, false).catch(() => undefined);
  }

  /** Binds and unbinds one after another: a viewer arriving as the last one leaves stays bound. */
  private bind(runId: string, on: boolean): Promise<void> {
    const next = this.bindings.then(async () => {
      const q = this.queue;
      if (q === undefined) throw new BrokerUnavailableError('broker unavailable');
      // Unbinding after the run got a viewer again would cut that viewer off.
      if (!on && this.viewers.has(runId)) return;
      const conn = await this.connection.connection();
      await withChannel(conn, (ch) =>
        on ? ch.bindQueue(q, OUTPUT_EXCHANGE, runId) : ch.unbindQueue(q, OUTPUT_EXCHANGE, runId),
      );
    });
    this.bindings = next.catch(() => undefined);
    return next;
  }

  private renew(runId: string): Promise<unknown> {
    return this.control.send(watchMessage(runId, new Date(Date.now() + WATCH_AHEAD_MS)));
  }

  private async renewAll(): Promise<void> {
    for (const runId of this.viewers.keys())
      await this.renew(runId).catch((err: unknown) =>
        this.logger.debug({ run_id: runId, err: errorMessage(err) }, 'watch not renewed'),
      );
  }

  private take(d: Delivery): void {
    d.ack();
    let m: OutputMessage;
    try {
      m = parseOutput(d.msg.content);
    } catch (err) {
      this.logger.warn({ err: errorMessage(err) }, 'dropping a malformed live output message');
      return;
    }
    for (const v of this.viewers.get(m.run_id) ?? []) v.deliver(m);
  }
}
