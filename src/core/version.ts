import { readFileSync } from 'node:fs';
import path from 'node:path';

/** CronQ's version, from the package.json shipped beside dist/ (src/ under tsx); "unknown" if unreadable. */
export const CRONQ_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(
      readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8'),
    ) as { version?: unknown };
    return typeof pkg.version === 'string' && /^[\w.+-]{1,64}$/.test(pkg.version)
      ? pkg.version
      : 'unknown';
  } catch {
    return 'unknown';
  }
})();
