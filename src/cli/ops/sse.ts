import { CronqError } from '../../core/errors';

/** One event block larger than this is not from our server. */
const MAX_EVENT_BYTES = 1024 * 1024;

export interface SseEvent {
  event: string;
  data: string;
}

/** The events of a text/event-stream body, as they arrive. */
export async function* sseEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
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
    if (buf.length > MAX_EVENT_BYTES)
      throw new CronqError('the live stream sent an event over 1 MiB');
  }
}
