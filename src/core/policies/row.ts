import { parseJobPolicies, type JobPolicies } from './policies';

/**
 * A job row's effective policies: the JSON its category file's fields were
 * stored as (jobs.policies) plus jobs.enabled. Text that does not parse,
 * or fields that do not pass, read as the defaults: the row was written by
 * the API, which refuses bad fields, so this only happens to a row edited
 * by hand, and a job must still run then.
 */
export function policiesOfRow(row: {
  policies: string | null;
  enabled: number | boolean;
}): JobPolicies {
  let fields: Record<string, unknown> = {};
  if (row.policies) {
    try {
      const parsed: unknown = JSON.parse(row.policies);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed))
        fields = parsed as Record<string, unknown>;
    } catch {
      // Unparsable text: the defaults.
    }
  }
  return parseJobPolicies({ ...fields, enabled: !!row.enabled }).policies;
}
