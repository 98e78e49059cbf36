/**
 * The control channel (src/core/control): a web-side ControlPublisher's
 * orders reach every runner's own server-named queue on `cronq.control`;
 * a malformed body is dropped with a log line and the next order still
 * arrives; with the broker away the publisher refuses at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AmqpConnection, ConfirmPublisher } from '../../src/core/amqp';
import { parseAmqpUrl } from '../../src/core/config';
import {
  CONTROL_EXCHANGE,
  ControlPublisher,
  killMessage,
  watchMessage,
} from '../../src/core/control';
import { BrokerUnavailableError } from '../../src/core/errors';
import { silentLogger } from '../../src/core/logger';
import { runId, useRunnerFixture } from '../helpers/runner-harness';
import { waitFor } from '../helpers/services';

const fx = useRunnerFixture();

async function controlPublisher(url: string) {
  const logger = silentLogger();
  const connection = new AmqpConnection(parseAmqpUrl(url), { logger, name: 'control-test' });
  const publisher = new ConfirmPublisher(connection, logger);
  const control = new ControlPublisher(connection, publisher);
  await control.start();
  connection.start();
  return {
    ready: () => waitFor(() => control.available, { message: 'control publisher connected' }),
    control,
    publisher,
    async close() {
      await publisher.close();
      await connection.close();
    },
  };
}

test('a watch order reaches every runner, each on its own queue; garbage is dropped', async () => {
  const a = await fx.startInProcess();
  const b = await fx.startInProcess();
  await a.events.waitFor('control:listening');
  await b.events.waitFor('control:listening');
  const web = await controlPublisher(fx.vhost.url);
  try {
    await web.ready();
    const id = runId();
    const until = new Date(Date.now() + 5000);
    const sent = await web.control.send(watchMessage(id, until));
    assert.equal(sent.routed, true);
    for (const r of [a, b]) {
      const [w] = await r.events.waitFor('control:watch', { where: (o) => o.runId === id });
      assert.equal(w.until, until.getTime());
    }
    // Bodies no runner can use: dropped, and the channel stays up.
    const conn = await fx.vhost.connect();
    const ch = await conn.createChannel();
    for (const body of ['{', '[]', JSON.stringify({ type: 'watch', run_id: 'nope', until: 1 })])
      ch.publish(CONTROL_EXCHANGE, 'runner.watch', Buffer.from(body));
    await ch.close();
    const next = runId();
    await web.control.send(watchMessage(next, until));
    await a.events.waitFor('control:watch', { where: (o) => o.runId === next });
    assert.equal(a.events.count('control:watch'), 2);
    assert.equal(a.runner.control.listening, true);
  } finally {
    await web.close();
  }
});

test('with no broker, a control order is refused at once, not queued', async () => {
  const web = await controlPublisher('amqp://guest:guest@127.0.0.1:1/none');
  try {
    const t0 = Date.now();
    await assert.rejects(
      web.control.send(
        killMessage({
          runId: runId(),
          requestedBy: 'api from test',
          requestedAt: new Date(),
          reason: undefined,
        }),
      ),
      BrokerUnavailableError,
    );
    assert.ok(Date.now() - t0 < 1000);
  } finally {
    await web.close();
  }
});
