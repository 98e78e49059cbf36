import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sseEvents, type SseEvent } from '../../src/cli/ops/sse';

/**
 * The operator CLI's reading of a live stream (src/cli/ops/sse.ts): any
 * line ending the format allows, split anywhere, and a stream that stalls
 * ends with a message instead of a wait for ever.
 */

async function* chunks(parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield new TextEncoder().encode(p);
}

async function collect(it: AsyncIterable<SseEvent>): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

const STREAM =
  ': keepalive\n\nevent: output\ndata: {"text":"a"}\n\nevent: end\ndata: {"status":"succeeded"}\n\n';
const EXPECTED = [
  { event: 'output', data: '{"text":"a"}' },
  { event: 'end', data: '{"status":"succeeded"}' },
];

test('events are read alike with \\n, \\r\\n or \\r line ends, however the stream is cut', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('\n', '\r\n', '\r'),
      fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 8 }),
      async (eol, cuts) => {
        const text = STREAM.replace(/\n/g, eol);
        const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const parts = [0, ...at].map((from, i) => text.slice(from, [...at, text.length][i]));
        assert.deepEqual(await collect(sseEvents(chunks(parts))), EXPECTED);
      },
    ),
  );
});

test('a stream with no byte for idle.ms aborts its request and fails saying so', async () => {
  const abort = new AbortController();
  // A body that sends one event, then nothing until its request is aborted.
  async function* stalled(): AsyncGenerator<Uint8Array> {
    yield new TextEncoder().encode('event: output\ndata: {"text":"a"}\n\n');
    await new Promise((_, reject) =>
      abort.signal.addEventListener('abort', () => reject(new Error('aborted'))),
    );
  }
  const seen: SseEvent[] = [];
  const t0 = Date.now();
  await assert.rejects(
    (async () => {
      for await (const e of sseEvents(stalled(), { idle: { ms: 200, abort } })) seen.push(e);
    })(),
    /no data from the live stream for 0.2 s/,
  );
  assert.equal(seen.length, 1, 'what came before is still read');
  assert.ok(abort.signal.aborted);
  assert.ok(Date.now() - t0 >= 190);
});

test('time spent handling an event does not count as the server being silent', async () => {
  const abort = new AbortController();
  const events: SseEvent[] = [];
  for await (const e of sseEvents(chunks([STREAM]), { idle: { ms: 100, abort } })) {
    events.push(e);
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.deepEqual(events, EXPECTED);
  assert.equal(abort.signal.aborted, false);
});
