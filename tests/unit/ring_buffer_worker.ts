// worker_threads side of tests/unit/ring_buffer.test.ts: one producer or one consumer of a shared
// RingBuffer moving a counter pattern (sample i = i mod 2^24, exact in Float32) in random chunks.
import { parentPort, workerData } from 'node:worker_threads';
import { RingBuffer } from '../../src/audio/ring_buffer.ts';
import { Rng } from '../../src/selftest/rng.ts';

const { role, buffer, total, maxChunk, seed } = workerData as {
  role: 'producer' | 'consumer' | 'async-consumer';
  buffer: SharedArrayBuffer;
  total: number;
  maxChunk: number;
  seed: number;
};
const ring = new RingBuffer(buffer);
const rng = new Rng(seed);
const chunk = new Float32Array(maxChunk);
const MOD = 1 << 24;

if (role === 'async-consumer') {
  // Nothing but an Atomics.waitAsync pending: the worker must stay alive until the samples come.
  const ok = await ring.waitForReadAsync(total, 20_000);
  const n = ring.pop(chunk, 0, Math.min(total, maxChunk));
  parentPort!.postMessage({ ok: ok ? 1 : 0, got: n, first: chunk[0] });
} else if (role === 'producer') {
  let sent = 0;
  let fullHits = 0;
  while (sent < total) {
    const len = Math.min(1 + rng.int(maxChunk), total - sent);
    for (let i = 0; i < len; i++) chunk[i] = (sent + i) % MOD;
    let off = 0;
    while (off < len) {
      const n = ring.push(chunk, off, len - off);
      if (n === 0) fullHits++;
      off += n;
    }
    sent += len;
  }
  parentPort!.postMessage({ sent, fullHits });
} else {
  let got = 0;
  let errors = 0;
  let firstError = '';
  let emptyHits = 0;
  while (got < total) {
    const want = 1 + rng.int(maxChunk);
    const n = ring.pop(chunk, 0, want);
    if (n === 0) {
      emptyHits++;
      if (emptyHits % 64 === 0) ring.waitForRead(1, 5);
      continue;
    }
    for (let i = 0; i < n; i++) {
      if (chunk[i] !== (got + i) % MOD) {
        if (errors === 0) firstError = `sample ${got + i}: expected ${(got + i) % MOD}, got ${chunk[i]}`;
        errors++;
      }
    }
    got += n;
  }
  parentPort!.postMessage({ got, errors, firstError, emptyHits, leftover: ring.availableRead() });
}
