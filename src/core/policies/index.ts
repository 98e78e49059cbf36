/**
 * Job policies, in one place so the injector, the runner, the results
 * consumer, the validator and the web agree: parsing and defaults
 * (policies.ts), fixed durations (duration.ts), catch-up and retry
 * arithmetic (catch-up.ts, retry.ts), and words for people (describe.ts).
 */
export * from './policies';
export * from './duration';
export * from './catch-up';
export * from './retry';
export * from './describe';
