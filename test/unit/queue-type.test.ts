import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/core/config';
import { ConfigError } from '../../src/core/errors';
import {
  isInequivalentArgError,
  queueArguments,
  QueueTypeMismatchError,
} from '../../src/core/queue-type';

describe('CRONQ_QUEUE_TYPE', () => {
  test('classic by default, so a broker set up by the Python cronq is taken as it is', () => {
    assert.equal(loadConfig({}).amqp.queueType, 'classic');
    assert.deepEqual(queueArguments('classic', 'job'), {});
    assert.deepEqual(queueArguments('classic', 'results'), {});
  });

  test('quorum (any case, trimmed) is read', () => {
    assert.equal(loadConfig({ CRONQ_QUEUE_TYPE: ' Quorum ' }).amqp.queueType, 'quorum');
  });

  test('anything else is a ConfigError naming the setting and both values', () => {
    for (const bad of ['stream', 'mirrored', 'classic,quorum'])
      assert.throws(
        () => loadConfig({ CRONQ_QUEUE_TYPE: bad }),
        (e: unknown) =>
          e instanceof ConfigError && /CRONQ_QUEUE_TYPE=.*classic or quorum/.test(e.message),
      );
  });

  test('quorum job and results queues dead-letter into cronq_results_dead past a delivery limit; the dead-letter queue itself does not', () => {
    const job = queueArguments('quorum', 'job');
    assert.equal(job['x-queue-type'], 'quorum');
    assert.equal(job['x-dead-letter-routing-key'], 'cronq_results_dead');
    assert.ok(Number(job['x-delivery-limit']) > 0);
    assert.ok(
      Number(queueArguments('quorum', 'results')['x-delivery-limit']) >
        Number(job['x-delivery-limit']),
    );
    assert.deepEqual(queueArguments('quorum', 'dead'), { 'x-queue-type': 'quorum' });
  });

  test('the mismatch is one line with the queue, its type, the setting and the way to move, and exits 2', () => {
    const e = new QueueTypeMismatchError('cronq_jobs', '/', 'quorum', 'classic');
    assert.equal(e.exitCode, 2);
    assert.ok(!e.message.includes('\n'));
    assert.match(e.message, /queue 'cronq_jobs' in vhost '\/' is a classic queue/);
    assert.match(e.message, /CRONQ_QUEUE_TYPE=quorum/);
    assert.match(e.message, /drain the queue, stop every CronQ daemon, delete the queue, restart/);
  });

  test("only the broker's 406 inequivalent-arg answer counts as a mismatch", () => {
    const msg = "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q'";
    assert.equal(isInequivalentArgError(Object.assign(new Error(msg), { code: 406 })), true);
    assert.equal(isInequivalentArgError(Object.assign(new Error(msg), { code: 404 })), false);
    assert.equal(isInequivalentArgError(new Error('socket closed')), false);
    assert.equal(isInequivalentArgError(null), false);
  });
});
