/** What every daemon's service is: started once, stopped idempotently, asked for health. */
export interface Service {
  start(): Promise<void>;
  /** Idempotent: a second call returns the first call's promise. */
  stop(): Promise<void>;
  status(): Record<string, unknown>;
}

/** Memoise a stop function so a second call waits for the first. */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}
