import { encodeLineRanges } from '../core/output-lines';
import type { StreamName } from './job-log';

/** Most stderr spans remembered (older ones, long out of the tail, are dropped first). */
const MAX_SPANS = 4096;
/** Chunks kept before compacting, whatever their size. */
const MAX_CHUNKS = 1024;
/** Longest reason taken from stderr's last line, in characters. */
const REASON_MAX = 500;

/**
 * The last `limit` bytes of a run's output (both streams, in arrival order),
 * kept as raw bytes and decoded only once at the end, so a multi-byte
 * character split across chunks is not mangled and binary output costs
 * nothing but memory bounded by about twice the limit. It also remembers
 * which bytes came from stderr (as spans of the whole output), so the tail
 * can say which of its lines are stderr's and what stderr said last.
 */
export class OutputTail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** Bytes seen in total, including those that fell out of the tail. */
  total = 0;
  /** [start, end) offsets of stderr bytes in the whole output, in order, adjacent ones merged. */
  private stderr: Array<[number, number]> = [];

  constructor(private readonly limit: number) {}

  push(chunk: Buffer, stream: StreamName = 'out'): void {
    const start = this.total;
    this.total += chunk.length;
    if (this.limit === 0) return;
    if (stream === 'err' && chunk.length > 0) {
      const last = this.stderr[this.stderr.length - 1];
      if (last && last[1] === start) last[1] = this.total;
      else this.stderr.push([start, this.total]);
      // Trimmed in batches, so a job alternating streams byte by byte costs constant time per chunk.
      if (this.stderr.length > 2 * MAX_SPANS) this.forgetSpans();
    }
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    // Compact only when well over the limit, so the cost per chunk stays constant.
    // Compact too when many small chunks pile up (a job printing a byte at a time),
    // so memory stays about twice the limit, not a Buffer object per byte.
    if (
      (this.bytes > this.limit * 2 || this.chunks.length > MAX_CHUNKS) &&
      this.chunks.length > 1
    ) {
      const all = Buffer.concat(this.chunks);
      const kept = Buffer.from(all.subarray(Math.max(0, all.length - this.limit)));
      this.chunks = [kept];
      this.bytes = kept.length;
      this.forgetSpans();
    }
  }

  /** Drop spans that ended before the kept bytes (and the oldest, past MAX_SPANS). */
  private forgetSpans(): void {
    const from = this.total - this.bytes;
    let i = 0;
    while (i < this.stderr.length && this.stderr[i]![1] <= from) i++;
    i = Math.max(i, this.stderr.length - MAX_SPANS);
    if (i > 0) this.stderr = this.stderr.slice(i);
  }

  /** The tail's bytes from a character boundary, and where they start in the whole output. */
  private kept(): { buf: Buffer; offset: number } {
    let buf = Buffer.concat(this.chunks);
    if (buf.length > this.limit) buf = buf.subarray(buf.length - this.limit);
    // Skip up to 3 continuation bytes (10xxxxxx) left over from a character cut by the limit.
    let start = 0;
    if (this.total > buf.length) {
      while (start < 3 && start < buf.length && (buf[start]! & 0xc0) === 0x80) start += 1;
    }
    return { buf: buf.subarray(start), offset: this.total - buf.length + start };
  }

  /**
   * The tail as a string: the last `limit` bytes, starting at a character
   * boundary, decoded as UTF-8 with U+FFFD for every invalid sequence (so it
   * is always a valid string for JSON and the database).
   */
  text(): string {
    if (this.limit === 0 || this.bytes === 0) return '';
    return this.kept().buf.toString('utf8');
  }

  /**
   * The tail's lines that hold stderr bytes, numbered from the end (see
   * core/output-lines.ts), and stderr's last non-empty line (trimmed, at
   * most 500 characters), or null when stderr wrote nothing in the tail.
   */
  stderrLines(): { ranges: string; lastLine: string | null } {
    if (this.limit === 0 || this.bytes === 0 || this.stderr.length === 0)
      return { ranges: '', lastLine: null };
    const { buf, offset } = this.kept();
    // Line boundaries in bytes ("\n" is one byte in UTF-8 and never inside a character).
    const starts: number[] = [0];
    for (let i = buf.indexOf(10); i !== -1 && i < buf.length - 1; i = buf.indexOf(10, i + 1))
      starts.push(i + 1);
    const count = starts.length;
    const flagged: number[] = [];
    let lastLine: string | null = null;
    let s = 0;
    for (let line = 0; line < count; line++) {
      const a = offset + starts[line]!;
      const b = offset + (line + 1 < count ? starts[line + 1]! : buf.length);
      while (s < this.stderr.length && this.stderr[s]![1] <= a) s++;
      const hit = s < this.stderr.length && this.stderr[s]![0] < b;
      if (!hit) continue;
      flagged.push(count - line);
      const text = buf
        .subarray(a - offset, b - offset)
        .toString('utf8')
        .trim();
      if (text !== '') lastLine = text.slice(0, REASON_MAX);
    }
    return { ranges: encodeLineRanges(flagged), lastLine };
  }
}
