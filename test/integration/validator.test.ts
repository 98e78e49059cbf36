/**
 * cronq-validator as a real process: good and bad category files, the exit
 * codes (0 valid, 1 invalid, 2 unreadable), and the schema file shipped in
 * the package being the very schema the API uses.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCommand, ROOT } from '../helpers/processes';
import { CATEGORY_SCHEMA } from '../../src/core/category';

let dir: string;
function file(name: string, content: unknown): string {
  const p = path.join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return p;
}
const validator = (args: string[], cwd?: string) => runCommand('cronq-validator', { args, cwd });

const GOOD = {
  category: 'example',
  jobs: [
    {
      name: 'Test Job',
      schedule: 'R/2013-05-29T00:00:00/PT1M',
      command: 'sleep 10',
      routing_key: 'slow',
    },
    {
      name: 'Nightly',
      schedule: 'R/2024-01-01T02:00:00Z/P1D',
      command: 'echo nightly',
      timeout: 600,
      description: 'a nightly job',
    },
  ],
};

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cronq-validator-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('cronq-validator accepts a valid file', () => {
  test('a valid file exits 0 and says how many jobs it has', async () => {
    const r = await validator(['--config', file('good.json', GOOD)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /good\.json: valid \(2 jobs\)/);
    assert.equal(r.stderr, '');
  });

  test('the example of docs/web.md, with TZ= after the cron expression, is valid', async () => {
    const doc = readFileSync(path.join(ROOT, 'docs', 'web.md'), 'utf8');
    const line = /\{"name": "nightly", "schedule": "[^"]*TZ=[^"]*"[^\n]*\}/.exec(doc);
    assert.ok(line, 'docs/web.md still shows the trailing TZ= example');
    const r = await validator([
      '--config',
      file('docs-example.json', `{"category": "docs", "jobs": [${line[0]}]}`),
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  test('a first occurrence past 9999-12-31 and an unknown zone are refused with the reason', async () => {
    const r = await validator([
      '--config',
      file('far.json', {
        jobs: [
          { name: 'far', schedule: 'R/2024-01-01T00:00:00Z/P8000Y', command: 'true' },
          { name: 'mars', schedule: '0 3 * * * TZ=Mars/Olympus', command: 'true' },
        ],
      }),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /jobs\[0\]\.schedule: .*lies past 9999-12-31T23:59:59\.999Z/);
    assert.match(r.stdout, /jobs\[1\]\.schedule: .*TZ=Mars\/Olympus is not a known time zone/);
  });

  test('without --config it reads cronq.config in the current folder', async () => {
    const sub = path.join(dir, 'cwd');
    mkdirSync(sub);
    writeFileSync(path.join(sub, 'cronq.config'), JSON.stringify(GOOD));
    const r = await validator([], sub);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /cronq\.config: valid/);
  });

  test('--quiet prints nothing for a valid file', async () => {
    const r = await validator(['--config', file('quiet.json', GOOD), '--quiet']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '');
  });

  test('the example category file in examples/ is valid', async () => {
    const r = await validator(['--config', path.join(ROOT, 'examples', 'category.json')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
});

describe('cronq-validator prints each problem as path: reason and exits 1', () => {
  const cases: Array<{ name: string; doc: unknown; args?: string[]; lines: RegExp[] }> = [
    {
      name: 'a job without a command',
      doc: { category: 'c', jobs: [{ name: 'a', schedule: 'R/2024-01-01T00:00:00Z/PT1M' }] },
      lines: [/^jobs\[0\]\.command: is required$/],
    },
    {
      name: 'a schedule that does not parse, in the third job',
      doc: {
        jobs: [
          GOOD.jobs[0],
          GOOD.jobs[1],
          { name: 'x', schedule: 'every tuesday-ish', command: 'true' },
        ],
      },
      lines: [/^jobs\[2\]\.schedule: .+/],
    },
    {
      name: 'duplicate job names',
      doc: { jobs: [GOOD.jobs[0], { ...GOOD.jobs[1], name: 'Test Job' }] },
      lines: [/^jobs\[1\]\.name: duplicates the name of jobs\[0\]/],
    },
    {
      name: 'a routing key with spaces and an unknown field',
      doc: { jobs: [{ ...GOOD.jobs[0], routing_key: 'not ok', colour: 'red' }] },
      lines: [
        /^jobs\[0\]\.routing_key: must be 1-32 letters/,
        /^jobs\[0\]\.colour: is not a known field$/,
      ],
    },
    {
      name: 'jobs missing altogether',
      doc: { category: 'c' },
      lines: [/^jobs: is required$/],
    },
    {
      name: 'a top-level array instead of an object',
      doc: [GOOD],
      lines: [/must be object/],
    },
    {
      name: 'a category that is not the one given with --category',
      doc: GOOD,
      args: ['--category', 'other'],
      lines: [/^category: is "example" but the URL names "other"$/],
    },
    {
      name: 'text that is not JSON, with the line and column',
      doc: '{\n  "jobs": [\n    { "name": "a", }\n  ]\n}\n',
      lines: [/^not valid JSON: .*line 3, column \d+/],
    },
    {
      name: 'an empty file',
      doc: '',
      lines: [/^not valid JSON: /],
    },
  ];
  cases.forEach((c, i) => {
    test(`${c.name} is invalid`, async () => {
      const r = await validator(['--config', file(`bad${i}.json`, c.doc), ...(c.args ?? [])]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const out = r.stdout.trim().split('\n');
      for (const re of c.lines)
        assert.ok(
          out.some((l) => re.test(l)),
          `no line matching ${re} in:\n${r.stdout}`,
        );
      assert.match(r.stderr, /^cronq-validator: .*bad\d+\.json: \d+ problems?\n$/);
    });
  });
});

describe('cronq-validator exits 2 when the file cannot be read', () => {
  test('a missing file', async () => {
    const r = await validator(['--config', path.join(dir, 'nope.json')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^cronq-validator: cannot read .*nope\.json: no such file\n$/);
  });
  test('a folder', async () => {
    const r = await validator(['--config', dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot read .*: is a directory\n$/);
  });
  test('no cronq.config in the current folder', async () => {
    const empty = path.join(dir, 'empty');
    mkdirSync(empty);
    const r = await validator([], empty);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot read cronq\.config: no such file/);
  });
  test('an unknown flag', async () => {
    const r = await validator(['--conf', 'x']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option '--conf'/);
  });
});

describe('the shipped JSON Schema is the schema the API uses', () => {
  test('schema/category.schema.json equals CATEGORY_SCHEMA (npm run schema rewrites it)', () => {
    const shipped = JSON.parse(
      readFileSync(path.join(ROOT, 'schema', 'category.schema.json'), 'utf8'),
    ) as unknown;
    assert.deepEqual(shipped, JSON.parse(JSON.stringify(CATEGORY_SCHEMA)));
  });
  test('--help names the exit codes and the default file', async () => {
    const r = await validator(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--config <file>/);
    assert.match(r.stdout, /cronq\.config/);
    assert.match(r.stdout, /0 valid, 1 invalid/);
  });
});

describe('cronq-validator checks the policy fields (docs/policies.md)', () => {
  const policed = {
    category: 'p',
    jobs: [
      {
        ...GOOD.jobs[1],
        overlap: 'forbid',
        catch_up: 'all',
        catch_up_limit: 20,
        starting_deadline: 'PT2H',
        retries: { max: 2, delay: 'PT30S', backoff: 2, max_delay: 'PT15M', on: ['failed', 'lost'] },
        enabled: false,
      },
    ],
  };

  test('every policy field, as docs/policies.md writes it, is valid', async () => {
    const r = await validator(['--config', file('policed.json', policed)]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  test('the example of docs/policies.md is valid', async () => {
    const doc = readFileSync(path.join(ROOT, 'docs', 'policies.md'), 'utf8');
    const json = /```json\n([\s\S]*?)```/.exec(doc);
    assert.ok(json, 'docs/policies.md shows a category file');
    const r = await validator(['--config', file('policies-doc.json', json[1]!)]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  test('the category file of the README is valid', async () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const json = /```json\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('## Category files')));
    assert.ok(json, 'the README shows a category file');
    const r = await validator(['--config', file('readme.json', json[1]!)]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /valid \(3 jobs\)/);
  });

  test('bad policy values are refused in core/policies words, each naming the job and the field', async () => {
    const bad = {
      jobs: [
        {
          ...GOOD.jobs[1],
          overlap: 'serial',
          catch_up_limit: 5000,
          starting_deadline: 'P1Y',
          retries: { max: 101, on: ['sometimes'] },
        },
      ],
    };
    const r = await validator(['--config', file('bad-policies.json', bad)]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const lines = r.stdout.trim().split('\n');
    for (const re of [
      /^jobs\[0\]\.overlap: must be "allow", "forbid" or "replace" \(job "Nightly"\)$/,
      /^jobs\[0\]\.catch_up_limit: must be a whole number from 1 to 1000 \(job "Nightly"\)$/,
      /^jobs\[0\]\.starting_deadline: years and months have no fixed length.* \(job "Nightly"\)$/,
      /^jobs\[0\]\.retries\.max: must be a whole number from 0 to 100 \(job "Nightly"\)$/,
      /^jobs\[0\]\.retries\.on: must list one or more of "failed", "timed_out", "lost" \(job "Nightly"\)$/,
    ])
      assert.ok(
        lines.some((l) => re.test(l)),
        `no line matching ${re} in:\n${r.stdout}`,
      );
    assert.equal(lines.length, 5, r.stdout);
  });

  test('a policy problem beside a schema problem: both are listed', async () => {
    const r = await validator([
      '--config',
      file('both.json', { jobs: [{ name: 'a', command: 'x', overlap: 'never' }] }),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^jobs\[0\]\.schedule: is required$/m);
    assert.match(
      r.stdout,
      /^jobs\[0\]\.overlap: must be "allow", "forbid" or "replace" \(job "a"\)$/m,
    );
  });
});
