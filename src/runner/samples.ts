/** The last `capacity` measurements of something, with percentiles for status() and the benchmark. */
export class Samples {
  private readonly values: number[] = [];
  private next = 0;

  constructor(private readonly capacity = 10_000) {}

  add(v: number): void {
    if (this.values.length < this.capacity) this.values.push(v);
    else this.values[this.next] = v;
    this.next = (this.next + 1) % this.capacity;
  }

  percentile(p: number): number | null {
    if (this.values.length === 0) return null;
    const sorted = [...this.values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
  }

  summary(): { n: number; p50: number | null; p99: number | null } {
    const r = (v: number | null) => (v === null ? null : Math.round(v * 100) / 100);
    return { n: this.values.length, p50: r(this.percentile(50)), p99: r(this.percentile(99)) };
  }
}
