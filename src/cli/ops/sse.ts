import { CronqError } from '../../core/errors';

/** One event block larger than this is not from our server. */
const MAX_EVENT_BYTES = 1024 * 1024;

export interface SseEvent {
  event: string;
  data: string;
}

export interface SseOptions {
  /**
   * Fail when no bytes at all (not even a keepalive comment) arrive for this
   * long: a stalled server, proxy or half-open connection. `abort` is the
   * controller whose signal the request was opened with; it is aborted then.
   */
  idle?: { ms: number; abort: AbortController };
}

/** The events of a text/event-stream body, as they arrive. */
export async function* sseEvents(
  body: AsyncIterable<Uint8Array>,
  opts: SseOptions = {},
): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of withIdleLimit(body, opts.idle)) {
    buf += decoder.decode(chunk, { stream: true });
    // Lines end with \r\n, \n or \r; a \r at the end may be half of a \r\n.
    const cr = buf.endsWith('\r');
    buf = (cr ? buf.slice(0, -1) : buf).replace(/\r\n?/g, '\n') + (cr ? '\r' : '');
    ({ buf } = yield* blocks(buf));
    if (buf.length > MAX_EVENT_BYTES)
      throw new CronqError('the live stream sent an event over 1 MiB');
  }
  // At the end, a \r held back is a line end after all.
  yield* blocks(buf.replace(/\r$/, '\n'));
}

/** The events of the complete blocks at the start of `buf`, and what is left of it. */
function* blocks(buf: string): Generator<SseEvent, { buf: string }> {
  let i: number;
  while ((i = buf.indexOf('\n\n')) >= 0) {
    const block = buf.slice(0, i);
    buf = buf.slice(i + 2);
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (data.length > 0) yield { event, data: data.join('\n') };
  }
  return { buf };
}

/** The chunks of `body`; waiting for the next one longer than idle.ms aborts the request and fails. */
async function* withIdleLimit(
  body: AsyncIterable<Uint8Array>,
  idle: SseOptions['idle'],
): AsyncGenerator<Uint8Array> {
  if (!idle) return yield* body;
  const it = body[Symbol.asyncIterator]();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      // Only the wait for the server counts, not the time its events are handled.
      timer = setTimeout(() => {
        timedOut = true;
        idle.abort.abort();
      }, idle.ms);
      const next = await it.next();
      clearTimeout(timer);
      if (next.done) return;
      yield next.value;
    }
  } catch (err) {
    if (timedOut)
      throw new CronqError(`no data from the live stream for ${idle.ms / 1000} s; giving up`);
    throw err;
  } finally {
    clearTimeout(timer);
    try {
      await it.return?.();
    } catch {
      // The stream is done with either way.
    }
  }
}
