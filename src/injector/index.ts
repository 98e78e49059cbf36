export { Injector, type InjectorOptions } from './injector';
export type { InjectorEvents, DispatcherEvents, OutageKind } from './events';
export { Dispatcher, type DispatcherOptions } from './dispatcher';
export { claimDueJobs, type ClaimOptions, type ClaimResult } from './claim';
export {
  planClaim,
  countMissed,
  type PlannedRun,
  type RecordedRun,
  type JobPlan,
  type DueJobRow,
} from './plan';
export { publishRuns, jobMessageBody, type PublishOutcome } from './publish';
export {
  markPublished,
  markUnroutable,
  retakeUnpublished,
  takeDueRetries,
  unroutableReason,
} from './outbox';
export { probe, clockOffsetMs, type Probe } from './probe';
