import { StringDecoder } from 'node:string_decoder';
import { OUTPUT_CHUNK_MAX_BYTES, notShownMarker } from '../core/live/messages';

/** Bytes per second one run's live stream carries at most. */
export const LIVE_RATE_BYTES_PER_S = 64 * 1024;
/** Output kept between two sends; older bytes beyond it are dropped (counted, never waited for). */
export const LIVE_PENDING_MAX_BYTES = 64 * 1024;

/**
 * One watched run's output on its way to the live view, thinned to a rate:
 * `push` only appends (the job's pipe is never slowed), keeping the newest
 * LIVE_PENDING_MAX_BYTES; `take` hands out what the rate allows, newest
 * output first kept, with a "[… 1.2 MB not shown …]" marker where bytes
 * were left out. Pure: time is passed in.
 */
export class LiveStream {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private dropped = 0;
  private tokens = OUTPUT_CHUNK_MAX_BYTES;
  private last: number;
  private decoder = new StringDecoder('utf8');

  constructor(
    public until: number,
    now: number,
  ) {
    this.last = now;
  }

  push(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    while (this.pendingBytes > LIVE_PENDING_MAX_BYTES && this.pending.length > 0) {
      const over = this.pendingBytes - LIVE_PENDING_MAX_BYTES;
      const head = this.pending[0]!;
      const n = Math.min(head.length, over);
      if (n === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(n);
      this.pendingBytes -= n;
      this.drop(n);
    }
  }

  get waiting(): boolean {
    return this.pendingBytes > 0 || this.dropped > 0;
  }

  /** The text to send now, or undefined (nothing waiting, or the rate used up). */
  take(now: number): string | undefined {
    this.tokens = Math.min(
      OUTPUT_CHUNK_MAX_BYTES,
      this.tokens + ((now - this.last) / 1000) * LIVE_RATE_BYTES_PER_S,
    );
    this.last = now;
    if (this.pendingBytes === 0 || this.tokens < 1) return undefined;
    let all = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const allowed = Math.floor(this.tokens);
    if (all.length > allowed) {
      // Keep the newest bytes, from a line start when one is near, so lines stay whole.
      let from = all.length - allowed;
      const nl = all.indexOf(0x0a, from - 1);
      if (nl >= 0 && nl < all.length - 1 && nl - from < 1024) from = nl + 1;
      this.drop(from);
      all = all.subarray(from);
    }
    this.tokens -= all.length;
    const marker = this.dropped > 0 ? notShownMarker(this.dropped) : '';
    this.dropped = 0;
    return marker + this.decoder.write(all);
  }

  /** What is still waiting, whatever the rate (the run's last words); then the stream is done. */
  rest(): string {
    const all = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const cut = all.length > OUTPUT_CHUNK_MAX_BYTES ? all.length - OUTPUT_CHUNK_MAX_BYTES : 0;
    if (cut > 0) this.drop(cut);
    const marker = this.dropped > 0 ? notShownMarker(this.dropped) : '';
    this.dropped = 0;
    return marker + this.decoder.write(all.subarray(cut)) + this.decoder.end();
  }

  private drop(n: number): void {
    this.dropped += n;
    // Bytes left out: a character cut in two must not join the next one.
    this.decoder = new StringDecoder('utf8');
  }
}
