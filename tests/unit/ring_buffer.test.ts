import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { RING_HEADER_BYTES, RingBuffer, RingBufferError } from '../../src/audio/ring_buffer.ts';

const seq = (start: number, n: number) => Float32Array.from({ length: n }, (_, i) => start + i);

describe('RingBuffer (single thread)', () => {
  it('rounds capacity up to a power of two and validates buffers', () => {
    const r = RingBuffer.create(100);
    expect(r.capacity).toBe(128);
    expect(r.buffer.byteLength).toBe(RING_HEADER_BYTES + 4 * 128);
    expect(r.isShared).toBe(true);
    expect(RingBuffer.create(8, false).isShared).toBe(false);
    expect(() => new RingBuffer(new SharedArrayBuffer(RING_HEADER_BYTES + 4 * 100))).toThrow(RingBufferError);
    expect(() => new RingBuffer(new SharedArrayBuffer(16))).toThrow(/power of two/);
    expect(() => RingBuffer.bytesFor(3)).toThrow(/power of two/);
    expect(() => RingBuffer.create(0)).toThrow(RingBufferError);
  });

  it('reports empty and full, and push/pop return partial counts', () => {
    const r = RingBuffer.create(8);
    const out = new Float32Array(16);
    expect(r.isEmpty()).toBe(true);
    expect(r.pop(out)).toBe(0);
    expect(r.availableWrite()).toBe(8);
    expect(r.push(seq(0, 5))).toBe(5);
    expect(r.push(seq(5, 5))).toBe(3); // only 3 slots left
    expect(r.isFull()).toBe(true);
    expect(r.push(seq(0, 1))).toBe(0);
    expect(r.availableRead()).toBe(8);
    expect(r.pop(out, 0, 3)).toBe(3);
    expect(Array.from(out.subarray(0, 3))).toEqual([0, 1, 2]);
    expect(r.pop(out)).toBe(5);
    expect(Array.from(out.subarray(0, 5))).toEqual([3, 4, 5, 6, 7]);
    expect(r.isEmpty()).toBe(true);
  });

  it('wraps around the storage end with offsets and lengths', () => {
    const r = RingBuffer.create(8);
    const out = new Float32Array(8);
    let next = 0;
    let expectNext = 0;
    for (let round = 0; round < 50; round++) {
      const k = 1 + (round % 7);
      const src = new Float32Array(k + 2);
      src.set(seq(next, k), 2);
      expect(r.push(src, 2, k)).toBe(k);
      next += k;
      const got = r.pop(out, 1, 7);
      expect(got).toBe(Math.min(7, r.availableRead() + got));
      for (let i = 0; i < got; i++) expect(out[1 + i]).toBe(expectNext++);
    }
    while (r.availableRead() > 0) {
      const got = r.pop(out);
      for (let i = 0; i < got; i++) expect(out[i]).toBe(expectNext++);
    }
    expect(expectNext).toBe(next);
  });

  it('keeps counting correctly when the free-running indices wrap 2^32', () => {
    const r = RingBuffer.create(16);
    const idx = new Int32Array(r.buffer, 0, 32);
    idx[0] = -5; // write index 2^32 - 5
    idx[16] = -5; // read index 2^32 - 5
    expect(r.availableRead()).toBe(0);
    expect(r.push(seq(100, 12))).toBe(12);
    expect(r.availableRead()).toBe(12);
    expect(r.availableWrite()).toBe(4);
    const out = new Float32Array(12);
    expect(r.pop(out)).toBe(12);
    expect(Array.from(out)).toEqual(Array.from(seq(100, 12)));
    expect(idx[0]).toBe(7);
  });

  it('pushSilence and skip', () => {
    const r = RingBuffer.create(4);
    r.push(seq(1, 2));
    expect(r.pushSilence(5)).toBe(2);
    const out = new Float32Array(4);
    expect(r.skip(1)).toBe(1);
    expect(r.pop(out)).toBe(3);
    expect(Array.from(out.subarray(0, 3))).toEqual([2, 0, 0]);
    expect(r.skip(3)).toBe(0);
  });

  it('waitForRead times out on an empty ring and waitForReadAsync resolves after a push', async () => {
    const r = RingBuffer.create(16);
    const t0 = Date.now();
    expect(r.waitForRead(1, 20)).toBe(false);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
    const p = r.waitForReadAsync(3, 2000);
    setTimeout(() => r.push(seq(0, 3)), 10);
    expect(await p).toBe(true);
    expect(await r.waitForReadAsync(4, 10)).toBe(false);
  });

  it('lengths and offsets must be integers in range (push(NaN) and pop(2.5) used to corrupt the indices)', () => {
    const r = RingBuffer.create(16);
    const buf = seq(0, 8);
    for (const bad of [NaN, 2.5, -1, Infinity]) {
      expect(() => r.push(buf, 0, bad)).toThrow(new RegExp(`RingBuffer\\.push: length must be a non-negative integer, got ${bad}`));
      expect(() => r.pop(buf, 0, bad)).toThrow(/RingBuffer\.pop: length/);
      expect(() => r.push(buf, bad)).toThrow(/RingBuffer\.push: offset must be an integer in \[0, 8\]/);
      expect(() => r.pop(buf, bad)).toThrow(/RingBuffer\.pop: offset/);
      expect(() => r.skip(bad)).toThrow(/RingBuffer\.skip/);
      expect(() => r.pushSilence(bad)).toThrow(/RingBuffer\.pushSilence/);
      expect(() => r.waitForRead(bad, 1)).toThrow(RingBufferError);
    }
    expect(() => r.push(buf, 9)).toThrow(/offset must be an integer in \[0, 8\], got 9/);
    // Nothing moved: the indices are intact.
    expect(r.availableRead()).toBe(0);
    expect(r.push(buf, 2, 3)).toBe(3);
    const out = new Float32Array(4);
    expect(r.pop(out, 1, 2)).toBe(2);
    expect(Array.from(out)).toEqual([0, 2, 3, 0]);
    expect(r.availableRead()).toBe(1);
  });

  it('a timeout must be a number >= 0 (NaN used to wait forever: Atomics.wait takes NaN as no timeout)', async () => {
    const r = RingBuffer.create(16);
    for (const bad of [NaN, -1]) {
      expect(() => r.waitForRead(1, bad)).toThrow(new RegExp(`RingBuffer\\.waitForRead: timeout must be a number of milliseconds >= 0, got ${bad}`));
      await expect(r.waitForReadAsync(1, bad)).rejects.toThrow(/RingBuffer\.waitForReadAsync: timeout must be a number of milliseconds >= 0/);
    }
    expect(r.waitForRead(1, 0)).toBe(false);
    expect(await r.waitForReadAsync(1, 0)).toBe(false);
  });
});

function runWorker(data: Record<string, unknown>): Promise<Record<string, number | string>> {
  return new Promise((ok, fail) => {
    // Node 20 workers cannot load .ts directly: bootstrap through tsx's module API.
    const file = new URL('./ring_buffer_worker.ts', import.meta.url).href;
    const boot = `import('tsx/esm/api').then((m) => m.tsImport(${JSON.stringify(file)}, ${JSON.stringify(import.meta.url)}))`;
    const w = new Worker(boot, { eval: true, workerData: data });
    w.once('message', ok);
    w.once('error', fail);
    // An exit before the message (even code 0) is a failure; after it, the reject is a no-op.
    w.once('exit', (code) => fail(new Error(`worker exited with code ${code} before posting its result`)));
  });
}

describe('RingBuffer across worker_threads', () => {
  it('a Node worker whose only pending work is waitForReadAsync stays alive until the samples come', async () => {
    const ring = RingBuffer.create(4096);
    const res = runWorker({ role: 'async-consumer', buffer: ring.buffer, total: 1920, maxChunk: 1920, seed: 0 });
    await new Promise((ok) => setTimeout(ok, 1500)); // worker started and waiting
    ring.push(Float32Array.from({ length: 1920 }, (_, i) => i / 2048));
    const r = await res;
    expect(r).toEqual({ ok: 1, got: 1920, first: 0 });
  });

  for (const { capacity, total, maxChunk } of [
    { capacity: 64, total: 2_000_000, maxChunk: 100 }, // tiny ring: constant full/empty contention
    { capacity: 4096, total: 6_000_000, maxChunk: 1920 },
  ]) {
    it(`moves ${total} samples through a ${capacity}-slot ring with no loss or duplication`, async () => {
      const ring = RingBuffer.create(capacity);
      const [prod, cons] = await Promise.all([
        runWorker({ role: 'producer', buffer: ring.buffer, total, maxChunk, seed: 1 }),
        runWorker({ role: 'consumer', buffer: ring.buffer, total, maxChunk, seed: 2 }),
      ]);
      expect(prod.sent).toBe(total);
      expect(cons.firstError).toBe('');
      expect(cons.errors).toBe(0);
      expect(cons.got).toBe(total);
      expect(cons.leftover).toBe(0);
      expect(ring.availableRead()).toBe(0);
    });
  }
});
