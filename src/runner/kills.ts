import type { KillOrder } from '../core/control';
import type { EventEmitter } from 'node:events';
import type { Logger } from '../core/logger';
import type { RunnerCounters } from './counters';
import type { RunnerEvents } from './events';
import type { Execution } from './execution';
import type { Slots, Waiting } from './slots';

/**
 * The kill orders this runner was given (control:kill), most recent
 * 10,000, oldest forgotten first: a delivery of one of these runs that
 * reaches this runner after the order is not started. In memory and per
 * process; the ledger decides the rest (the web marks a run not started
 * yet `killed`, and the results consumer never lets a late result
 * overwrite that).
 */
export class KilledRuns {
  private readonly orders = new Map<string, KillOrder>();

  constructor(private readonly capacity = 10_000) {}

  remember(order: KillOrder): void {
    this.orders.delete(order.runId);
    this.orders.set(order.runId, order);
    while (this.orders.size > this.capacity) {
      const oldest = this.orders.keys().next().value as string;
      this.orders.delete(oldest);
    }
  }

  get(runId: string): KillOrder | undefined {
    return this.orders.get(runId);
  }

  get size(): number {
    return this.orders.size;
  }
}

export interface KillerOptions {
  slots: Slots;
  execution: Execution;
  killed: KilledRuns;
  counters: RunnerCounters;
  events: EventEmitter<RunnerEvents>;
  logger: Logger;
}

/**
 * What a kill order does here: a run in a slot has its process group
 * ended (SIGTERM, then CRONQ_KILL_GRACE_SECONDS, then SIGKILL; it is
 * reported `killed`); a delivery waiting here (for a slot or for its
 * occurrence) is not started and is reported `killed`; and the order is
 * remembered, so a delivery that comes later is not started either.
 */
export class Killer {
  constructor(private readonly opts: KillerOptions) {}

  kill(order: KillOrder): void {
    const { slots, killed, events } = this.opts;
    killed.remember(order);
    const run = slots.active.get(order.runId);
    if (run) {
      if (run.kill) return;
      run.kill = order;
      this.opts.logger.info(
        { run_id: order.runId, job_id: run.job.jobId, requested_by: order.requestedBy },
        'kill asked: terminating the process group',
      );
      run.process?.terminate('kill');
      events.emit('run:killing', {
        runId: order.runId,
        jobId: run.job.jobId,
        requestedBy: order.requestedBy,
      });
      return;
    }
    const waiting = slots.take(order.runId);
    if (waiting) this.refuse(waiting, order);
  }

  /** A delivery of a run killed before it started: not run, reported `killed`, acked. */
  refuse(w: Waiting, order: KillOrder): void {
    this.opts.counters.killed += 1;
    this.opts.execution.refuseKilled(w, order);
  }

  /** The kill order of `runId`, if this runner was given one. */
  orderFor(runId: string): KillOrder | undefined {
    return this.opts.killed.get(runId);
  }
}
