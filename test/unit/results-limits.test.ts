import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isPoisonError, shortError } from '../../src/results/errors';
import { limitsFor } from '../../src/results/packet';

describe('results consumer limits', () => {
  test('an error from knex is reported by the server message alone, short and without the statement', () => {
    const sql = `INSERT INTO runs (run_id, job_name) VALUES ('x', '${'n'.repeat(200_000)}')`;
    const err = Object.assign(new Error(`${sql} - Data too long for column 'job_name' at row 1`), {
      sql,
      code: 'ER_DATA_TOO_LONG',
      sqlState: '22001',
    });
    const text = shortError(err);
    assert.equal(text, "ER_DATA_TOO_LONG: Data too long for column 'job_name' at row 1");
    assert.equal(
      shortError(Object.assign(new Error('x'), { sqlMessage: 'y'.repeat(10_000) })).length,
      200,
    );
    assert.doesNotMatch(shortError(Object.assign(new Error(sql), { sql })), /INSERT/);
  });

  test('a statement over the packet limit is poison, a lost connection is not', () => {
    assert.equal(
      isPoisonError(Object.assign(new Error('x'), { code: 'ER_NET_PACKET_TOO_LARGE' })),
      true,
    );
    assert.equal(
      isPoisonError(Object.assign(new Error('x'), { code: 'PROTOCOL_CONNECTION_LOST' })),
      false,
    );
    assert.equal(isPoisonError(Object.assign(new Error('x'), { sqlState: '22003' })), true);
    assert.equal(isPoisonError(Object.assign(new Error('x'), { sqlState: '45000' })), false);
  });

  test('one row with the longest output kept always fits the packet; statements stay under it', () => {
    for (const packet of [
      1024 * 1024,
      4 * 1024 * 1024,
      16 * 1024 * 1024,
      64 * 1024 * 1024,
      1 << 30,
    ]) {
      const l = limitsFor(packet, 16 * 1024 * 1024);
      // Escaping may double every byte; the other fields and the statement's text fit in the margin.
      assert.ok(
        2 * l.maxOutputBytes + 16 * 1024 < packet,
        `output ${l.maxOutputBytes} for ${packet}`,
      );
      assert.ok(l.write.maxStatementBytes < packet);
      assert.ok(l.maxOutputBytes < 16 * 1024 * 1024, 'fits MEDIUMTEXT');
    }
    assert.equal(
      limitsFor(16 * 1024 * 1024, 65536).maxOutputBytes,
      65536,
      'the setting when it fits',
    );
  });
});
