#!/usr/bin/env node
// Runs the whole suite with Node's test runner, in two phases:
//   1. test/unit and test/integration, several files at once (each test has
//      its own database and vhost, so they cannot see each other);
//   2. test/disruptive, one file at a time (with filters, only those naming
//      the folder, e.g. `disruptive/runner`): these stop or cut the shared
//      broker or database and restore it in a `finally`, so nothing else may
//      run beside them.
// It prints Node's own report, then one closing line "tests: N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv.slice(2);

function testFiles(dir) {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  const out = [];
  for (const name of readdirSync(abs)) {
    const p = join(abs, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(join(dir, name)));
    else if (name.endsWith('.test.ts')) out.push(join(dir, name));
  }
  return out.sort();
}

function selected(files) {
  return only.length === 0 ? files : files.filter((f) => only.some((o) => f.includes(o)));
}

// A filter picks disruptive files only when it names that folder ("disruptive/runner"):
// `run-tests.mjs runner` must not stop the broker under everyone else's tests.
function selectedDisruptive(files) {
  if (only.length === 0) return files;
  return files.filter((f) => only.some((o) => o.includes('disruptive') && f.includes(o)));
}

const phases = [
  { name: 'unit+integration', files: selected([...testFiles('test/unit'), ...testFiles('test/integration')]), concurrency: Number(process.env.CRONQ_TEST_CONCURRENCY ?? 3) },
  { name: 'disruptive', files: selectedDisruptive(testFiles('test/disruptive')), concurrency: 1 },
];

const totals = { pass: 0, fail: 0, skipped: 0, todo: 0, cancelled: 0 };
let exitCode = 0;
const tmp = mkdtempSync(join(tmpdir(), 'cronq-tests-'));
for (const phase of phases) {
  if (phase.files.length === 0) continue;
  const tap = join(tmp, `${phase.name}.tap`);
  console.log(`\n== ${phase.name}: ${phase.files.length} files ==`);
  const r = spawnSync(
    process.execPath,
    [
      '--import', 'tsx',
      '--test',
      `--test-concurrency=${phase.concurrency}`,
      '--test-reporter=spec', '--test-reporter-destination=stdout',
      '--test-reporter=tap', `--test-reporter-destination=${tap}`,
      ...phase.files,
    ],
    { cwd: root, stdio: 'inherit', env: process.env },
  );
  if (r.status !== 0) exitCode = 1;
  const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
  for (const key of Object.keys(totals)) {
    const m = new RegExp(`^# ${key} (\\d+)$`, 'm').exec(text);
    if (m) totals[key] += Number(m[1]);
  }
}
const failed = totals.fail + totals.cancelled;
if (failed > 0) exitCode = 1;
console.log(`\ntests: ${totals.pass} passed, ${failed} failed, ${totals.skipped + totals.todo} skipped`);
process.exit(exitCode);
