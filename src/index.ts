/** CronQ as a library: the pieces other programs may reuse. */
export { loadConfig, type Config } from './core/config';
export { parseSchedule, nextOccurrence, type Schedule } from './core/schedule';
export {
  parseJobMessage,
  parseResultMessage,
  buildJobMessage,
  type JobMessage,
  type ResultMessage,
} from './core/messages';
export {
  CATEGORY_SCHEMA,
  parseCategory,
  categoryProblems,
  type CategoryDefinition,
} from './core/category';
export * from './core/errors';
