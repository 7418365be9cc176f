/**
 * GPU timestamp profiler: with `timestamp-query`, each dispatch runs in its own compute pass
 * whose begin/end timestamps are written to a query set; after submit the totals per label are
 * accumulated. Attributes GPU time per kernel (not CPU encode time).
 */
export class Profiler {
  /**
   * While false, recordings started from now on run unprofiled (one compute pass for all their
   * dispatches): time a workload with it off, then profile the same work for the breakdown.
   */
  enabled = true;
  private readonly capacity = 4096;
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuf: GPUBuffer;
  private readonly readBuf: GPUBuffer;
  private labels: string[] = [];
  private readonly totals = new Map<string, { ms: number; count: number }>();

  constructor(private readonly device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: this.capacity });
    this.resolveBuf = device.createBuffer({ size: this.capacity * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readBuf = device.createBuffer({ size: this.capacity * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Timestamp writes for the next pass, or undefined when this submit's query set is full. */
  next(label: string): GPUComputePassTimestampWrites | undefined {
    const i = this.labels.length;
    if (2 * i + 2 > this.capacity) return undefined;
    this.labels.push(label);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Resolves this submit's queries into the readback buffer (recorded at the end of the encoder). */
  resolve(encoder: GPUCommandEncoder): void {
    const n = this.labels.length * 2;
    if (!n) return;
    encoder.resolveQuerySet(this.querySet, 0, n, this.resolveBuf, 0);
    encoder.copyBufferToBuffer(this.resolveBuf, 0, this.readBuf, 0, n * 8);
  }

  /** Maps the timestamps of the last submit and adds them to the totals. */
  async collect(): Promise<void> {
    const labels = this.labels;
    this.labels = [];
    if (!labels.length) return;
    await this.readBuf.mapAsync(GPUMapMode.READ, 0, labels.length * 16);
    const ts = new BigInt64Array(this.readBuf.getMappedRange(0, labels.length * 16));
    labels.forEach((label, i) => {
      const ms = Number(ts[2 * i + 1] - ts[2 * i]) / 1e6;
      const t = this.totals.get(label) ?? { ms: 0, count: 0 };
      t.ms += ms > 0 ? ms : 0;
      t.count++;
      this.totals.set(label, t);
    });
    this.readBuf.unmap();
  }

  /** Accumulated GPU time per label, most expensive first. */
  report(): { label: string; ms: number; count: number }[] {
    return [...this.totals.entries()].map(([label, t]) => ({ label, ...t })).sort((a, b) => b.ms - a.ms);
  }

  reset(): void {
    this.totals.clear();
  }
}
