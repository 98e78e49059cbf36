import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { errorMessage } from '../core/async';
import { categoryProblems, type Problem } from '../core/category';
import { runCli } from './common';

/**
 * cronq-validator: check a category file with the same schema the category
 * API uses. Exit 0 valid, 1 invalid (bad JSON included, with its position),
 * 2 when the file cannot be read.
 */
export async function run(argv: string[]): Promise<void> {
  const program = new Command('cronq-validator')
    .description('Validate a category JSON file against the schema of PUT /api/category/<name>.')
    .option('--config <file>', 'the category file', 'cronq.config')
    .option(
      '--category <name>',
      'the category name the file will be PUT under (must equal its "category" field)',
    )
    .option('--quiet', 'print nothing when the file is valid')
    .addHelpText(
      'after',
      '\nExit status: 0 valid, 1 invalid (each problem printed as "jobs[2].schedule: <reason>"), 2 file unreadable.\n' +
        'The schema is schema/category.schema.json in the package. Environment: none.\n',
    )
    .action((opts: { config: string; category?: string; quiet?: boolean }) => {
      const result = validateFile(opts.config, opts.category);
      if (result.kind === 'unreadable') {
        process.stderr.write(`cronq-validator: cannot read ${opts.config}: ${result.reason}\n`);
        process.exit(2);
      }
      if (result.problems.length === 0) {
        if (!opts.quiet)
          process.stdout.write(
            `${opts.config}: valid (${result.jobs} job${result.jobs === 1 ? '' : 's'})\n`,
          );
        return;
      }
      for (const p of result.problems)
        process.stdout.write(`${p.path ? `${p.path}: ` : ''}${p.message}\n`);
      process.stderr.write(
        `cronq-validator: ${opts.config}: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}\n`,
      );
      process.exit(1);
    });
  await runCli(program, argv);
}

export type FileValidation =
  | { kind: 'unreadable'; reason: string }
  | { kind: 'checked'; problems: Problem[]; jobs: number; doc: unknown };

/** Read, parse and check a category file (shared with `cronq apply`). */
export function validateFile(file: string, categoryName?: string): FileValidation {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      kind: 'unreadable',
      reason:
        code === 'ENOENT'
          ? 'no such file'
          : code === 'EISDIR'
            ? 'is a directory'
            : errorMessage(err),
    };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    return {
      kind: 'checked',
      problems: [
        { path: '', message: `not valid JSON: ${jsonErrorWhere(text, errorMessage(err))}` },
      ],
      jobs: 0,
      doc: undefined,
    };
  }
  const problems = categoryProblems(doc, categoryName);
  const jobs = Array.isArray((doc as { jobs?: unknown })?.jobs)
    ? (doc as { jobs: unknown[] }).jobs.length
    : 0;
  return { kind: 'checked', problems, jobs, doc };
}

/** Node's JSON error gives a character position; a person wants a line and column. */
function jsonErrorWhere(text: string, message: string): string {
  const m = /at position (\d+)/.exec(message);
  if (!m) return message;
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return `${message.replace(/ in JSON at position \d+.*$/, '')} at line ${line}, column ${column}`;
}
