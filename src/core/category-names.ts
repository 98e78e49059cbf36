/**
 * THE rule for "same category or job name", used by cronq-validator,
 * cronq apply, the dry run and PUT /api/category alike: two names are one
 * exactly when their keys are equal, and the key is the name itself. The
 * name columns use a binary, no-pad collation (migration
 * 20240101000027_names_exact_collation.js), so the database agrees:
 * "Backup" and "backup", "ß" and "ss", "ı" and "I" are different names.
 * Names that would look alike but differ (trailing spaces, which CHAR
 * columns drop; invisible characters; non-NFC forms) never get this far:
 * nameProblem in category-text.ts refuses them.
 */

/** The key of a name in a Map or Set: equal keys, one name. */
export function nameKey(name: string): string {
  return name;
}

export function sameName(a: string, b: string): boolean {
  return nameKey(a) === nameKey(b);
}

/** A problem for every job whose name is the name of an earlier job. */
export function duplicateNameProblems(
  jobs: ReadonlyArray<{ name: string }>,
): Array<{ path: string; message: string }> {
  const first = new Map<string, number>();
  const problems: Array<{ path: string; message: string }> = [];
  jobs.forEach((job, i) => {
    const key = nameKey(job.name);
    const prev = first.get(key);
    if (prev === undefined) first.set(key, i);
    else
      problems.push({
        path: `jobs[${i}].name`,
        message: `duplicates the name of jobs[${prev}] ("${jobs[prev]!.name}")`,
      });
  });
  return problems;
}
