/**
 * The composition root's rules: parts start in order and stop in reverse;
 * a failed start stops what had begun; stop is idempotent and stops every
 * part even when one fails; a signal stops, a second one exits 130.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { Daemon, type DaemonPart } from '../../src/core/daemon';

const logger = pino({ level: 'silent' });

function recorder() {
  const calls: string[] = [];
  const part = (
    name: string,
    how: { start?: boolean; failStart?: boolean; failStop?: boolean; stop?: boolean } = {},
  ): DaemonPart => ({
    name,
    ...(how.start === false
      ? {}
      : {
          async start() {
            calls.push(`start ${name}`);
            if (how.failStart) throw new Error(`${name} cannot start`);
          },
        }),
    ...(how.stop === false
      ? {}
      : {
          async stop() {
            calls.push(`stop ${name}`);
            if (how.failStop) throw new Error(`${name} cannot stop`);
          },
        }),
  });
  return { calls, part };
}

describe('Daemon', () => {
  test('starts the parts in order and stops them in reverse order', async () => {
    const { calls, part } = recorder();
    const d = new Daemon({ logger, parts: [part('a'), part('b'), part('c')] });
    assert.equal(await d.start(), true);
    await d.stop();
    assert.deepEqual(calls, ['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
  });

  test('a part that fails to start stops the ones begun, itself included, in reverse; later ones are untouched; the error goes on', async () => {
    const { calls, part } = recorder();
    const d = new Daemon({
      logger,
      parts: [part('pool', { start: false }), part('a'), part('b', { failStart: true }), part('c')],
    });
    await assert.rejects(d.start(), /b cannot start/);
    assert.deepEqual(calls, ['start a', 'start b', 'stop b', 'stop a', 'stop pool']);
  });

  test('stop is idempotent and stops every part even when an earlier one fails', async () => {
    const { calls, part } = recorder();
    const d = new Daemon({ logger, parts: [part('a'), part('b', { failStop: true }), part('c')] });
    await d.start();
    const [first, second] = [d.stop(), d.stop()];
    assert.equal(first, second);
    await first;
    await d.stop();
    assert.deepEqual(calls.slice(3), ['stop c', 'stop b', 'stop a']);
  });

  test('a stop during a start ends the wait, stops what had begun, and starts nothing more', async () => {
    const { calls, part } = recorder();
    let waiting!: () => void;
    const waitsForSignal: DaemonPart = {
      name: 'schema',
      start: (signal) =>
        new Promise<void>((resolve, reject) => {
          waiting = resolve;
          signal.addEventListener('abort', () => reject(new Error('pool closed')));
        }),
    };
    const d = new Daemon({
      logger,
      parts: [part('pool', { start: false }), waitsForSignal, part('c')],
    });
    const started = d.start();
    await new Promise((r) => setImmediate(r));
    assert.ok(waiting, 'the schema part is starting');
    await d.stop();
    assert.equal(await started, false, 'a stop is not a failure');
    assert.deepEqual(calls, ['stop pool']);
  });

  test('parts not begun are not stopped; parts without start are always stopped', async () => {
    const { calls, part } = recorder();
    const d = new Daemon({ logger, parts: [part('a'), part('resource', { start: false })] });
    await d.stop();
    assert.deepEqual(calls, ['stop resource']);
    assert.equal(await d.start(), false);
    assert.deepEqual(calls, ['stop resource']);
  });

  test('run: the first signal stops and exits 0; a second exits 130 after the hook', async () => {
    const { calls, part } = recorder();
    const signals = new EventEmitter();
    const exits: number[] = [];
    let release!: () => void;
    const slowStop: DaemonPart = {
      name: 'slow',
      start: () => undefined,
      stop: () => new Promise<void>((r) => (release = r)),
    };
    const d = new Daemon({
      logger,
      parts: [part('a'), slowStop],
      signals,
      exit: (code) => exits.push(code),
      onSecondSignal: () => calls.push('hook'),
    });
    assert.equal(await d.run(), true);
    signals.emit('SIGTERM', 'SIGTERM');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(exits, [], 'waits for the parts to stop');
    signals.emit('SIGINT', 'SIGINT');
    assert.deepEqual(exits, [130]);
    assert.ok(calls.includes('hook'));
    release();
    await d.stop();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(exits, [130, 0]);
    assert.deepEqual(calls, ['start a', 'hook', 'stop a']);
  });

  test('run: a failed start rejects and stops listening for signals', async () => {
    const { part } = recorder();
    const signals = new EventEmitter();
    const d = new Daemon({
      logger,
      parts: [part('a', { failStart: true })],
      signals,
      exit: () => assert.fail('no exit'),
    });
    await assert.rejects(d.run(), /a cannot start/);
    assert.equal(signals.listenerCount('SIGTERM'), 0);
    assert.equal(signals.listenerCount('SIGINT'), 0);
  });
});
