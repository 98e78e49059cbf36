import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { cellText, cut, formatTable, type Column } from '../../src/cli/ops/table';
import { refSplits } from '../../src/cli/ops/job-ref';
import { exitCodeOf } from '../../src/cli/ops/run-now';

const width = (l: string) => [...l].length;

describe('tables of the operator commands', () => {
  test('every line fits the width, whatever the cells, for up to six columns', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            header: fc.string({ minLength: 1, maxLength: 14 }),
            shrink: fc.boolean(),
            align: fc.constantFrom<'left' | 'right'>('left', 'right'),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        fc.array(
          fc.array(fc.oneof(fc.string({ maxLength: 120 }), fc.integer(), fc.constant(null)), {
            maxLength: 6,
          }),
          { maxLength: 8 },
        ),
        fc.integer({ min: 40, max: 200 }),
        (columns: Column[], rows, w) => {
          for (const line of formatTable(columns, rows, w).split('\n'))
            assert.ok(width(line) <= w, `${width(line)} > ${w}: ${JSON.stringify(line)}`);
        },
      ),
    );
  });

  test('a table that fits is printed whole; a long cell of a shrinkable column is cut with …', () => {
    const cols: Column[] = [{ header: 'NAME', shrink: true }, { header: 'STATUS' }];
    assert.equal(formatTable(cols, [['backup', 'ok']]), 'NAME    STATUS\nbackup  ok\n');
    const out = formatTable(cols, [['x'.repeat(100), 'succeeded']], 40).split('\n');
    assert.equal(out[1], `${'x'.repeat(28)}…  succeeded`);
  });

  test('control characters of a cell never reach the terminal; empty cells read "-"', () => {
    assert.equal(cellText('a\u001b[31mred\r\n'), 'a?[31mred??');
    assert.equal(cellText(null), '-');
    assert.equal(cut('héllo wörld', 6), 'héllo…');
  });
});

describe('naming a job', () => {
  test('category/name is tried at every slash, since names may hold slashes', () => {
    assert.deepEqual(refSplits('ops/backup'), [{ category: 'ops', name: 'backup' }]);
    assert.deepEqual(refSplits('a/b/c'), [
      { category: 'a', name: 'b/c' },
      { category: 'a/b', name: 'c' },
    ]);
    assert.deepEqual(refSplits('/x'), []);
    assert.deepEqual(refSplits('x/'), []);
  });
});

describe("cronq run --wait's exit status", () => {
  test("a success is 0, a failure the command's code, an end without a code 1", () => {
    assert.equal(exitCodeOf({ status: 'succeeded', return_code: 0 }), 0);
    assert.equal(exitCodeOf({ status: 'failed', return_code: 3 }), 3);
    assert.equal(exitCodeOf({ status: 'timed_out', return_code: 137 }), 137);
    assert.equal(exitCodeOf({ status: 'lost', return_code: null }), 1);
    assert.equal(exitCodeOf({ status: 'failed', return_code: 0 }), 1);
    assert.equal(exitCodeOf({ status: 'failed', return_code: -1 }), 1);
  });
});
