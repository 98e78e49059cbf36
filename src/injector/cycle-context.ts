import type { EventEmitter } from 'node:events';
import type { Config } from '../core/config';
import type { ControlPublisher } from '../core/control';
import type { Knex } from '../core/db';
import type { Logger } from '../core/logger';
import type { Dispatcher } from './dispatcher';
import type { InjectorEvents } from './events';

/** What a cycle and its claims work with, handed down by the Injector. */
export interface CycleContext {
  readonly db: Knex;
  readonly settings: Config['injector'];
  /** `host.pid`, written to jobs.locked_by and runs.claimed_by. */
  readonly claimant: string;
  readonly logger: Logger;
  readonly dispatcher: Dispatcher;
  readonly events: EventEmitter<InjectorEvents>;
  /** The process clock (ms). */
  readonly now: () => number;
  /** stop() was called: finish what is in hand, start nothing new. */
  readonly stopping: () => boolean;
  readonly counters: { claimedJobs: number; scheduleErrors: number };
  /** Kill orders of runs replaced by overlap replace. */
  readonly control: ControlPublisher;
}
