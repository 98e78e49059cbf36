import type { AmqpConnection, ConfirmPublisher } from '../core/amqp';
import { withChannel } from '../core/amqp';
import type { WatchOrder } from '../core/control';
import { declareOutputExchange, OUTPUT_EXCHANGE } from '../core/live/topology';
import { encodeOutput, type OutputMessage } from '../core/live/messages';
import type { Logger } from '../core/logger';
import { LiveStream } from './live-stream';

/** How often watched runs' output is sent: well within the live view's 1 s. */
export const LIVE_FLUSH_MS = 100;
/** Watch orders remembered for runs not (yet) running here; the soonest to expire goes first. */
const MAX_REMEMBERED_WATCHES = 1000;
/** Unconfirmed chunks of one run at most: a slow broker thins the stream instead of piling up. */
const MAX_IN_FLIGHT_PER_RUN = 4;

/**
 * The runner's side of live output (docs/architecture.md). Nothing happens
 * for a run nobody watches: `push` is one Map lookup. A watch order
 * (control:watch) makes the run's output flow, thinned by LiveStream, to
 * `cronq.output` (routing key = run id) until the order's `until`; a web
 * renews it while a viewer is connected. Sends are never awaited in the
 * output path, and with the broker away nothing is sent or kept.
 */
export class LiveOutput {
  /** Watch orders by run id (epoch ms until), for runs here or to come. */
  private readonly watches = new Map<string, number>();
  private readonly running = new Set<string>();
  private readonly streams = new Map<string, { s: LiveStream; seq: number; inFlight: number }>();
  private timer: NodeJS.Timeout | undefined;
  private declared = false;
  private stopped = false;

  constructor(
    private readonly connection: AmqpConnection,
    private readonly publisher: ConfirmPublisher,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async start(): Promise<void> {
    await this.connection.onConnect(async (conn) => {
      this.declared = false;
      await withChannel(conn, declareOutputExchange);
      this.declared = true;
    });
    this.connection.on('disconnected', () => (this.declared = false));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.streams.clear();
  }

  /** A watch order: stream the run while it runs here, until `until`. */
  watch(o: WatchOrder): void {
    if (o.until <= this.now()) return;
    const prev = this.watches.get(o.runId);
    if (prev === undefined && this.watches.size >= MAX_REMEMBERED_WATCHES) this.forgetOne();
    this.watches.set(o.runId, Math.max(prev ?? 0, o.until));
    if (this.running.has(o.runId)) this.open(o.runId);
  }

  runStarted(runId: string): void {
    this.running.add(runId);
    if (this.watches.has(runId)) this.open(runId);
  }

  /** The job wrote `chunk`. Called for every chunk of every run: must stay cheap. */
  push(runId: string, chunk: Buffer): void {
    this.streams.get(runId)?.s.push(chunk);
  }

  /** The run ended: its last output and an end message, when it was watched. */
  runEnded(runId: string, status: string): void {
    this.running.delete(runId);
    this.watches.delete(runId);
    const st = this.streams.get(runId);
    if (!st) return;
    this.streams.delete(runId);
    const text = st.s.rest();
    if (text) this.send({ run_id: runId, seq: st.seq++, text });
    this.send({ run_id: runId, seq: st.seq++, end: true, status });
    this.idle();
  }

  private open(runId: string): void {
    const until = this.watches.get(runId)!;
    const st = this.streams.get(runId);
    if (st) st.s.until = until;
    else this.streams.set(runId, { s: new LiveStream(until, this.now()), seq: 0, inFlight: 0 });
    if (!this.timer && !this.stopped) {
      this.timer = setInterval(() => this.flush(), LIVE_FLUSH_MS);
      this.timer.unref();
    }
  }

  private flush(): void {
    const now = this.now();
    for (const [runId, st] of this.streams) {
      if (st.s.until <= now) {
        // Nobody renewed the watch: the viewers left. Nothing more is sent.
        this.streams.delete(runId);
        this.watches.delete(runId);
        continue;
      }
      if (!st.s.waiting || st.inFlight >= MAX_IN_FLIGHT_PER_RUN || !this.ready) continue;
      const text = st.s.take(now);
      if (text === undefined) continue;
      st.inFlight += 1;
      this.send({ run_id: runId, seq: st.seq++, text }, () => (st.inFlight -= 1));
    }
    this.idle();
  }

  private get ready(): boolean {
    return this.declared && this.connection.isConnected && !this.stopped;
  }

  /** Fire and forget: the output path never waits for the broker. */
  private send(m: OutputMessage, done?: () => void): void {
    if (!this.ready) {
      done?.();
      return;
    }
    this.publisher
      .publish(OUTPUT_EXCHANGE, m.run_id, encodeOutput(m), { persistent: false })
      .catch((err: unknown) =>
        this.logger.debug({ run_id: m.run_id, err: String(err) }, 'live output chunk not sent'),
      )
      .finally(() => done?.());
  }

  private idle(): void {
    if (this.streams.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private forgetOne(): void {
    let soonest: string | undefined;
    let at = Infinity;
    for (const [id, until] of this.watches)
      if (!this.running.has(id) && until < at) [soonest, at] = [id, until];
    if (soonest !== undefined) this.watches.delete(soonest);
  }
}
