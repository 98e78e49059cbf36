/**
 * The package as a user gets it: `npm pack`, installed globally into a
 * temporary prefix, exposes every command, and ships the migrations, views
 * and JSON Schema the commands read at run time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/processes';

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
};
let work: string;
let prefix: string;
let installed: string;

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'cronq-pack-'));
  prefix = path.join(work, 'prefix');
  // dist/ is already built (npm test builds first); --ignore-scripts keeps
  // `prepare` from rewriting dist/ under the other tests running beside this one.
  const { stdout } = await run(
    'npm',
    ['pack', '--ignore-scripts', '--pack-destination', work, '--silent'],
    { cwd: ROOT, timeout: 60_000 },
  );
  const tgz = path.join(work, stdout.trim().split('\n').pop()!);
  // Dependencies come from npm's cache when it has them (fast, works offline).
  await run(
    'npm',
    [
      'install',
      '-g',
      '--prefix',
      prefix,
      tgz,
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
    ],
    { timeout: 120_000 },
  );
  installed = path.join(prefix, 'lib', 'node_modules', pkg.name);
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack installed into a temporary prefix', () => {
  test('puts every command of package.json in <prefix>/bin', () => {
    const bins = readdirSync(path.join(prefix, 'bin')).sort();
    assert.deepEqual(bins, Object.keys(pkg.bin).sort());
  });

  for (const name of Object.keys(pkg.bin)) {
    test(`${name} --help answers from the installed package`, async () => {
      const { stdout } = await run(path.join(prefix, 'bin', name), ['--help'], {
        cwd: work,
        env: { PATH: process.env.PATH ?? '' },
        timeout: 20_000,
      });
      assert.match(stdout, /Usage: cronq/);
    });
  }

  test('ships the compiled code, migrations, views and the category JSON Schema, but not the sources or tests', () => {
    for (const p of [
      'dist/cli/cronq.js',
      'dist/core/db.js',
      'migrations/20240101000001_original_schema.js',
      'views',
      'schema/category.schema.json',
      'README.md',
    ]) {
      assert.ok(existsSync(path.join(installed, p)), p);
    }
    for (const p of ['src', 'test', 'bench', 'tsconfig.json'])
      assert.ok(!existsSync(path.join(installed, p)), `${p} is not shipped`);
  });

  test('the installed code finds its migrations folder', async () => {
    const { stdout } = await run(process.execPath, [
      '-e',
      `const d=require(${JSON.stringify(path.join(installed, 'dist/core/db.js'))}).MIGRATIONS_DIR; console.log(require('fs').readdirSync(d).length)`,
    ]);
    assert.ok(Number(stdout.trim()) >= 4);
  });

  test('the installed validator accepts a file and refuses another', async () => {
    const ok = await run(path.join(prefix, 'bin', 'cronq-validator'), [
      '--config',
      path.join(ROOT, 'examples', 'category.json'),
    ]);
    assert.match(ok.stdout, /valid \(3 jobs\)/);
    await assert.rejects(
      run(path.join(prefix, 'bin', 'cronq-validator'), [
        '--config',
        path.join(ROOT, 'package.json'),
      ]),
      (e: { code: number }) => e.code === 1,
    );
  });
});
