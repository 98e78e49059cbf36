import { Command } from 'commander';
import { errorMessage } from '../core/async';
import { loadConfig } from '../core/config';
import { CronqError, UsageError } from '../core/errors';
import { runCli } from './common';
import { validateFile } from './validator';

interface Plan {
  added: string[];
  changed: string[];
  removed: string[];
  /** The policy fields each changed job changes (servers since #16; absent when none). */
  policy_changes?: Record<string, string[]>;
  /** The category's notify targets change (docs/notifications.md); `notify` says where they send. */
  notify_changed?: boolean;
  notify?: string[];
}

/**
 * `cronq apply FILE`: the CI path of the original README's curl example.
 * Validates the file locally (same schema as the server), asks the web
 * admin for the plan with ?dry_run=1, prints it, then PUTs it for real
 * unless --dry-run. Exit 0 applied (or planned), 1 refused or invalid,
 * 2 unreadable file or bad usage.
 */
export async function run(argv: string[]): Promise<void> {
  const program = new Command('cronq apply')
    .description(
      'PUT a category file to a running web admin, printing the plan (added, changed, removed) first.',
    )
    .argument('<file>', 'the category JSON file')
    .option(
      '--url <url>',
      'the web admin (CRONQ_API_URL; default http://127.0.0.1:$PORT, PORT default 5000)',
    )
    .option('--category <name>', 'category to replace (default: the file\'s "category" field)')
    .option('--dry-run', 'print the plan only; change nothing')
    .addHelpText(
      'after',
      '\nEnvironment: CRONQ_API_TOKEN (sent as Authorization: Bearer when set), CRONQ_API_URL, PORT.\n' +
        'Jobs of the category that the file does not list are removed, as with PUT /api/category/<name>.\n' +
        'Exit status: 0 done, 1 invalid file or refused by the server, 2 unreadable file or bad usage.\n',
    )
    .action(async (file: string, opts: { url?: string; category?: string; dryRun?: boolean }) => {
      const config = loadConfig(process.env);
      const checked = validateFile(file, opts.category);
      if (checked.kind === 'unreadable')
        throw new UsageError(`cannot read ${file}: ${checked.reason}`);
      if (checked.problems.length > 0) {
        for (const p of checked.problems)
          process.stdout.write(`${p.path ? `${p.path}: ` : ''}${p.message}\n`);
        throw new CronqError(
          `${file} is not a valid category file (${checked.problems.length} problem${checked.problems.length === 1 ? '' : 's'}); nothing was sent`,
        );
      }
      const name = opts.category ?? (checked.doc as { category?: string }).category;
      if (!name)
        throw new UsageError(`${file} has no "category" field: give the name with --category`);

      const base = opts.url ?? process.env.CRONQ_API_URL ?? `http://127.0.0.1:${config.web.port}`;
      let endpoint: URL;
      try {
        endpoint = new URL(
          `api/category/${encodeURIComponent(name)}`,
          base.endsWith('/') ? base : `${base}/`,
        );
      } catch {
        throw new UsageError(`--url must be an http(s) URL, got "${base}"`);
      }
      const put = (query: string) =>
        sendCategory(endpoint, query, checked.doc, config.web.apiToken);

      const plan = await put('?dry_run=1');
      process.stdout.write(describePlan(name, endpoint.origin, plan));
      if (opts.dryRun) {
        process.stdout.write('dry run: nothing changed\n');
        return;
      }
      const done = await put('');
      const n = (k: 'added' | 'changed' | 'removed') => done[k]?.length ?? 0;
      process.stdout.write(
        `applied: ${n('added')} added, ${n('changed')} changed, ${n('removed')} removed\n`,
      );
    });
  await runCli(program, argv);
}

async function sendCategory(
  endpoint: URL,
  query: string,
  body: unknown,
  token: string | undefined,
): Promise<Plan & { status: string }> {
  const url = `${endpoint.href}${query}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'PUT',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CronqError(
      `cannot reach ${endpoint.origin}: ${cause?.code ?? cause?.message ?? errorMessage(err)} (is cronq-web running? set --url or CRONQ_API_URL)`,
    );
  }
  const text = await res.text();
  let json: {
    status?: string;
    error?: { message?: string; problems?: Array<{ path: string; message: string }> };
  } & Partial<Plan> = {};
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    // not JSON: reported below with the status
  }
  if (!res.ok) {
    for (const p of json.error?.problems ?? [])
      process.stdout.write(`${p.path ? `${p.path}: ` : ''}${p.message}\n`);
    throw new CronqError(
      `the server refused the category (${res.status}): ${json.error?.message ?? (text.trim().slice(0, 200) || res.statusText)}`,
    );
  }
  if (query && json.status !== 'dry_run') {
    // An older server ignores ?dry_run and has just applied the file.
    throw new CronqError(
      `the server does not support dry runs and answered "${json.status ?? text.slice(0, 100)}": the category may have been applied already`,
    );
  }
  return {
    status: json.status ?? '',
    added: json.added ?? [],
    changed: json.changed ?? [],
    removed: json.removed ?? [],
    policy_changes: policyChangesOf(json.policy_changes),
    notify_changed: json.notify_changed === true,
    notify: Array.isArray(json.notify)
      ? json.notify.filter((t): t is string => typeof t === 'string').map((t) => t.slice(0, 200))
      : [],
  };
}

/** Only lists of field names are kept from a server's answer (it is printed). */
function policyChangesOf(v: unknown): Record<string, string[]> {
  const out = new Map<string, string[]>();
  if (typeof v === 'object' && v !== null && !Array.isArray(v))
    for (const [name, fields] of Object.entries(v))
      if (Array.isArray(fields))
        out.set(
          name,
          fields.filter((f): f is string => typeof f === 'string').map((f) => f.slice(0, 40)),
        );
  return Object.fromEntries(out);
}

function describePlan(name: string, origin: string, p: Plan): string {
  const lines = [`plan for category "${name}" at ${origin}:`];
  for (const j of p.added) lines.push(`  + add     ${j}`);
  for (const j of p.changed) {
    const fields = Object.hasOwn(p.policy_changes ?? {}, j) ? p.policy_changes![j]! : [];
    lines.push(`  ~ change  ${j}${fields.length > 0 ? ` (${fields.join(', ')})` : ''}`);
  }
  for (const j of p.removed) lines.push(`  - remove  ${j}`);
  if (p.notify_changed)
    lines.push(
      `  ~ notify  ${p.notify && p.notify.length > 0 ? p.notify.slice(0, 10).join('; ') : 'none'}`,
    );
  if (lines.length === 1) lines.push('  no changes');
  return `${lines.join('\n')}\n`;
}
