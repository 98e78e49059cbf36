/**
 * The one resilient consumer (src/core/amqp/consumer.ts) against the real
 * broker: it consumes with the prefetch asked for, stops and starts when
 * held and released, reopens its channel when the broker closes it or
 * cancels it (the queue was deleted), and acks of deliveries whose channel
 * is gone are refused without throwing. Also: amqplib's internals that the
 * write coalescing relies on are still there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createTestVhost, rabbitmqctl, waitFor, type TestVhost } from '../helpers/services';
import { parseAmqpUrl } from '../../src/core/config';
import { AmqpConnection, ResilientConsumer, type Delivery } from '../../src/core/amqp';
import { coalesceWrites } from '../../src/core/amqp/write-coalescing';
import { silentLogger } from '../../src/core/logger';

const QUEUE = 'consumer_test';

describe('ResilientConsumer', () => {
  let vhost: TestVhost;
  let connection: AmqpConnection;
  const got: Delivery[] = [];
  let consumer: ResilientConsumer;

  before(async () => {
    vhost = await createTestVhost();
    connection = new AmqpConnection(parseAmqpUrl(vhost.url), {
      logger: silentLogger(),
      name: 'consumer-test',
    });
    consumer = new ResilientConsumer({
      connection,
      queue: QUEUE,
      prefetch: 3,
      logger: silentLogger(),
      declare: async (_conn, ch) => {
        await ch.assertQueue(QUEUE, { durable: true });
      },
      onDelivery: (d) => got.push(d),
    });
    await consumer.start();
    connection.start();
    await once(consumer, 'consuming');
  });

  after(async () => {
    await consumer.close();
    await connection.close();
    await vhost.drop();
  });

  async function publish(n: number): Promise<void> {
    const c = await vhost.connect();
    const ch = await c.createConfirmChannel();
    for (let i = 0; i < n; i++) ch.sendToQueue(QUEUE, Buffer.from(String(i)));
    await ch.waitForConfirms();
    await ch.close();
  }

  async function ready(): Promise<number> {
    const c = await vhost.connect();
    const ch = await c.createChannel();
    const q = await ch.checkQueue(QUEUE);
    await ch.close();
    return q.messageCount;
  }

  test('takes no more unacked deliveries than the prefetch, and the rest once they are acked', async () => {
    got.length = 0;
    await publish(5);
    await waitFor(() => got.length === 3, { message: 'three deliveries' });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(got.length, 3, 'the prefetch holds the other two back');
    for (const d of got.splice(0)) assert.equal(d.ack(), true);
    await waitFor(() => got.length === 2, { message: 'the other two' });
    for (const d of got.splice(0)) d.ack();
  });

  test('held, it takes nothing new; released, it consumes again', async () => {
    got.length = 0;
    await consumer.hold('full');
    assert.equal(consumer.consuming, false);
    assert.deepEqual(consumer.heldFor, ['full']);
    await publish(2);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got.length, 0, 'nothing delivered while held');
    assert.equal(await ready(), 2);
    const consuming = once(consumer, 'consuming');
    consumer.release('full');
    await consuming;
    await waitFor(() => got.length === 2, { message: 'both after release' });
    for (const d of got.splice(0)) d.ack();
  });

  test('two holds: consuming resumes only when both are released', async () => {
    got.length = 0;
    await consumer.hold('a');
    await consumer.hold('b');
    consumer.release('a');
    await publish(1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got.length, 0, 'still held by b');
    consumer.release('b');
    await waitFor(() => got.length === 1, { message: 'delivered after the last release' });
    got.splice(0)[0]!.ack();
  });

  test('released while its hold is still cancelling, it consumes again (no hold left behind)', async () => {
    got.length = 0;
    for (let i = 0; i < 20; i++) {
      const held = consumer.hold('race');
      consumer.release('race');
      await held;
      await waitFor(() => consumer.consuming, {
        timeoutMs: 5000,
        message: `consuming after round ${i}`,
      });
    }
    await publish(1);
    await waitFor(() => got.length === 1, { message: 'a delivery after the races' });
    got.shift()!.ack();
  });

  test('a channel the broker closes is reopened; acks of its deliveries are refused, and the message comes back', async () => {
    got.length = 0;
    await publish(1);
    await waitFor(() => got.length === 1, { message: 'first delivery' });
    const first = got.shift()!;
    const lost = once(consumer, 'channelLost');
    // Acking a delivery tag twice is a channel error (406 PRECONDITION_FAILED): the broker closes the channel.
    first.ack();
    first.ack();
    await lost;
    assert.equal(first.live, false);
    assert.equal(first.ack(), false, 'an ack on a closed channel is refused, not thrown');
    await publish(1);
    await waitFor(() => got.length === 1, {
      timeoutMs: 15_000,
      message: 'consuming on a new channel',
    });
    assert.equal(got[0]!.live, true);
    got.shift()!.ack();
  });

  test('when the queue is deleted, the broker cancels the consumer and it declares the queue again', async () => {
    got.length = 0;
    const idle = once(consumer, 'idle');
    await rabbitmqctl('delete_queue', '-p', vhost.vhost, QUEUE);
    await idle;
    await once(consumer, 'consuming');
    await publish(1);
    await waitFor(() => got.length === 1, {
      timeoutMs: 15_000,
      message: 'consuming the redeclared queue',
    });
    got.shift()!.ack();
  });

  test('a delivery whose handler throws is set aside, and the next is taken', async () => {
    const c2 = new ResilientConsumer({
      connection,
      queue: 'throwing',
      prefetch: 5,
      logger: silentLogger(),
      declare: async (_conn, ch) => {
        await ch.assertQueue('throwing', { durable: true });
      },
      onDelivery: (d) => {
        if (d.msg.content.toString() === 'bad') throw new Error('boom');
        seen.push(d.msg.content.toString());
        d.ack();
      },
    });
    const seen: string[] = [];
    await c2.start();
    const c = await vhost.connect();
    const ch = await c.createConfirmChannel();
    ch.sendToQueue('throwing', Buffer.from('bad'));
    ch.sendToQueue('throwing', Buffer.from('good'));
    await ch.waitForConfirms();
    await waitFor(() => seen.includes('good'), { message: 'the good one' });
    await waitFor(async () => (await ch.checkQueue('throwing')).messageCount === 0, {
      message: 'the bad one is not requeued',
    });
    await ch.close();
    await c2.close();
  });
});

describe('a consumer whose declaration fails', () => {
  test('is retried on its own channel; the shared connection and its other consumer go on', async () => {
    const vhost = await createTestVhost();
    const connection = new AmqpConnection(parseAmqpUrl(vhost.url), {
      logger: silentLogger(),
      name: 'declare-fails-test',
    });
    const seen: string[] = [];
    let attempts = 0;
    const steady = new ResilientConsumer({
      connection,
      queue: 'steady',
      prefetch: 5,
      logger: silentLogger(),
      declare: async (_conn, ch) => {
        await ch.assertQueue('steady', { durable: true });
      },
      onDelivery: (d) => {
        seen.push(`steady:${d.msg.content.toString()}`);
        d.ack();
      },
    });
    // Declares passively a queue nobody has made yet (a node of a cluster that is
    // down answers the same way): the broker closes the channel with 404.
    const waiting = new ResilientConsumer({
      connection,
      queue: 'later',
      prefetch: 5,
      logger: silentLogger(),
      backoff: { delay: () => 50 },
      declare: async (_conn, ch) => {
        attempts += 1;
        await ch.checkQueue('later');
      },
      onDelivery: (d) => {
        seen.push(`later:${d.msg.content.toString()}`);
        d.ack();
      },
    });
    try {
      await waiting.start();
      await steady.start();
      connection.start();
      await waitFor(() => steady.consuming, { message: 'the other consumer consuming' });
      await waitFor(() => attempts >= 3, { message: 'the failing declaration retried' });
      const c = await vhost.connect();
      const ch = await c.createConfirmChannel();
      ch.sendToQueue('steady', Buffer.from('1'));
      await ch.waitForConfirms();
      await waitFor(() => seen.includes('steady:1'), { message: 'the other consumer consumes' });
      assert.equal(connection.connectCount, 1, 'the shared connection was never closed for it');
      await ch.assertQueue('later', { durable: true });
      ch.sendToQueue('later', Buffer.from('2'));
      await ch.waitForConfirms();
      await waitFor(() => seen.includes('later:2'), {
        message: 'consuming once its queue exists',
      });
      assert.equal(connection.connectCount, 1);
      await c.close();
    } finally {
      await waiting.close();
      await steady.close();
      await connection.close();
      await vhost.drop();
    }
  });
});

describe('write coalescing', () => {
  test("amqplib's internals it needs are there in the pinned version (else it would silently not apply)", async () => {
    const vhost = await createTestVhost();
    try {
      const c = await vhost.connect();
      assert.equal(coalesceWrites(c), true);
      // Still a working connection after the patch.
      const ch = await c.createConfirmChannel();
      await ch.assertQueue('q');
      for (let i = 0; i < 50; i++) ch.sendToQueue('q', Buffer.from('x'));
      await ch.waitForConfirms();
      assert.equal((await ch.checkQueue('q')).messageCount, 50);
      await ch.close();
    } finally {
      await vhost.drop();
    }
  });
});
