export { ResultsService, type ResultsServiceOptions, type ResultsStatus } from './service';
export type { ResultsCounts, ResultsEvents } from './events';
export { writeResults, type WriteSummary } from './store';
export { markLostRuns, type LostRun } from './lost';
export { foldResults, type FoldedBatch, type RunChange, type EventRow } from './fold';
export { refreshJobStatus } from './job-status';
