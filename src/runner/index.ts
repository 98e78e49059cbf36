export { Runner, type RunnerDeps } from './runner';
export type { RunnerEvents, OutboxEvents, HoldReason } from './events';
export { ResultOutbox } from './result-outbox';
export { JobProcess, type ProcessOutcome } from './job-process';
export { OutputTail } from './output-tail';
export { JobLogWriter, resolveLogDir } from './job-log';
