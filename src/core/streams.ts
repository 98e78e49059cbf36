import type { Readable } from 'node:stream';

/** Resolves when a readable (a child's output pipe) has delivered everything, or is gone. */
export function streamEnded(s: Readable): Promise<void> {
  if (s.destroyed || s.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    s.once('close', () => resolve());
    s.once('end', () => resolve());
  });
}
