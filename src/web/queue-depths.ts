import { withChannel, type AmqpConnection } from '../core/amqp';
import { errorMessage, within } from '../core/async';
import { DEFAULT_JOB_QUEUE, RESULTS_DEAD_QUEUE, RESULTS_QUEUE } from '../core/topology';

/**
 * Queue depths for /system, read over AMQP with passive declares (no
 * management plugin needed): messages waiting and consumers, per queue.
 * The results queue's depth is the results consumer's backlog. Each check
 * gets its own short channel (a passive declare of a queue that does not
 * exist closes its channel), at most MAX_QUEUES of them, and the whole read
 * is bounded in time: a broker away or slow is shown as such, never waited on.
 */

export interface QueueDepth {
  name: string;
  /** null: no such queue on the broker. */
  messages: number | null;
  consumers: number | null;
}

export type BrokerView =
  { reachable: true; queues: QueueDepth[] } | { reachable: false; reason: string };

const MAX_QUEUES = 20;
const TIMEOUT_MS = 2000;

/** The queues every installation has, then the runners' own (as they announced them). */
export function queuesToCheck(runnerQueues: readonly string[]): string[] {
  return [
    ...new Set([RESULTS_QUEUE, RESULTS_DEAD_QUEUE, DEFAULT_JOB_QUEUE, ...runnerQueues]),
  ].slice(0, MAX_QUEUES);
}

export async function brokerView(
  connection: AmqpConnection | undefined,
  names: readonly string[],
): Promise<BrokerView> {
  if (!connection) return { reachable: false, reason: 'this web process has no broker configured' };
  if (!connection.isConnected) return { reachable: false, reason: 'not connected to the broker' };
  try {
    const read = within(
      (async () => {
        const conn = await connection.connection();
        const queues: QueueDepth[] = [];
        for (const name of names) {
          try {
            const q = await withChannel(conn, (ch) => ch.checkQueue(name));
            queues.push({ name, messages: q.messageCount, consumers: q.consumerCount });
          } catch {
            queues.push({ name, messages: null, consumers: null });
          }
        }
        return queues;
      })(),
      TIMEOUT_MS,
    );
    const r = await read;
    return r.done
      ? { reachable: true, queues: r.value }
      : { reachable: false, reason: `no answer within ${TIMEOUT_MS / 1000} s` };
  } catch (err) {
    return { reachable: false, reason: errorMessage(err) };
  }
}
