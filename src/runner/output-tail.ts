/**
 * The last `limit` bytes of a run's output (both streams, in arrival order),
 * kept as raw bytes and decoded only once at the end, so a multi-byte
 * character split across chunks is not mangled and binary output costs
 * nothing but memory bounded by about twice the limit.
 */
export class OutputTail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** Bytes seen in total, including those that fell out of the tail. */
  total = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.limit === 0) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    // Compact only when well over the limit, so the cost per chunk stays constant.
    if (this.bytes > this.limit * 2 && this.chunks.length > 1) {
      const all = Buffer.concat(this.chunks);
      const kept = Buffer.from(all.subarray(all.length - this.limit));
      this.chunks = [kept];
      this.bytes = kept.length;
    }
  }

  /**
   * The tail as a string: the last `limit` bytes, starting at a character
   * boundary, decoded as UTF-8 with U+FFFD for every invalid sequence (so it
   * is always a valid string for JSON and the database).
   */
  text(): string {
    if (this.limit === 0 || this.bytes === 0) return '';
    let buf = Buffer.concat(this.chunks);
    if (buf.length > this.limit) buf = buf.subarray(buf.length - this.limit);
    // Skip up to 3 continuation bytes (10xxxxxx) left over from a character cut by the limit.
    let start = 0;
    if (this.total > buf.length) {
      while (start < 3 && start < buf.length && (buf[start]! & 0xc0) === 0x80) start += 1;
    }
    return buf.subarray(start).toString('utf8');
  }
}
