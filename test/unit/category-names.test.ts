/**
 * The one rule for "same job name" (src/core/category-names.ts) that the
 * validator, the dry run and PUT share: exact, as the binary no-pad name
 * columns compare.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { duplicateNameProblems, nameKey, sameName } from '../../src/core/category-names';
import { categoryProblems } from '../../src/core/category';

test('names differing in case, accents, ß/ss or dotless i are different names', () => {
  for (const [a, b] of [
    ['Backup', 'backup'],
    ['aß', 'ass'],
    ['ı', 'I'],
    ['café', 'cafe'],
  ] as const) {
    assert.equal(sameName(a, b), false, `${a} / ${b}`);
    assert.notEqual(nameKey(a), nameKey(b));
  }
  assert.equal(sameName('Backup', 'Backup'), true);
});

test('every repeat of an earlier name is one problem naming the first', () => {
  assert.deepEqual(
    duplicateNameProblems([
      { name: 'Backup' },
      { name: 'backup' },
      { name: 'Backup' },
      { name: 'Backup' },
    ]),
    [
      { path: 'jobs[2].name', message: 'duplicates the name of jobs[0] ("Backup")' },
      { path: 'jobs[3].name', message: 'duplicates the name of jobs[0] ("Backup")' },
    ],
  );
});

test('the category check uses the rule, and refuses a name with trailing space before it could look like another', () => {
  const job = (name: string) => ({ name, schedule: '0 * * * *', command: 'true' });
  assert.deepEqual(
    categoryProblems({ jobs: [job('Backup'), job('backup '), job('backup'), job('Backup')] }),
    [
      { path: 'jobs[1].name', message: 'must not begin or end with white space' },
      { path: 'jobs[3].name', message: 'duplicates the name of jobs[0] ("Backup")' },
    ],
  );
});
