/**
 * Lock-free single-producer single-consumer ring buffer of Float32 PCM samples over a
 * SharedArrayBuffer, synchronised with Atomics (the design of padenot/ringbuf.js, written anew).
 *
 * Memory layout of the backing buffer (all little-endian, byte offsets):
 *   [0, 4)     write index  (Int32, free-running sample count mod 2^32, stored only by the producer)
 *   [64, 68)   read index   (Int32, free-running sample count mod 2^32, stored only by the consumer)
 *   [128, 128 + 4·capacity)  Float32 sample storage
 *   [4, 16)    producer's stamp anchor (Int32 ×3: sequence, write index, stamp; see `publishStamp`)
 * The two indices sit on separate 64-byte cache lines so producer and consumer do not false-share.
 * The capacity is a power of two, so `index & (capacity - 1)` maps a free-running index to a slot
 * and `(write - read) >>> 0` is the number of readable samples even after the indices wrap 2^32.
 *
 * Ordering: the producer writes samples, then publishes them with `Atomics.store(write)`; the
 * consumer loads `write` with `Atomics.load` before reading samples (and symmetrically for `read`),
 * so a reader never sees a slot before its sample is written (sequentially consistent Atomics).
 *
 * Exactly one thread may call the producer methods (`push`) and exactly one the consumer methods
 * (`pop`, `skip`, `waitForRead*`). `push`/`pop` allocate nothing: they are safe in an
 * AudioWorkletProcessor's `process()`.
 *
 * A non-shared `ArrayBuffer` works too (Atomics accept non-shared integer arrays): that gives the
 * same ring inside one thread (e.g. the playback jitter buffer when SharedArrayBuffer is missing).
 */

/** Byte offset of the Float32 storage inside the backing buffer. */
export const RING_HEADER_BYTES = 128;
const WRITE = 0; // Int32 slot of the write index
const READ = 16; // Int32 slot of the read index (byte 64)
const STAMP_SEQ = 1; // seqlock of the producer's stamp anchor (odd while it is being written)
const STAMP_INDEX = 2; // write index the anchor stamps
const STAMP_VALUE = 3; // the producer's clock at that index
/** Largest capacity: 2^30 samples (4 GiB of storage would not fit a buffer anyway). */
export const RING_MAX_CAPACITY = 1 << 30;

/** Thrown for an invalid capacity or a backing buffer that is too small / wrongly sized. */
export class RingBufferError extends Error {
  override name = 'RingBufferError';
}

/**
 * Checks an (offset, len) span of a caller's array: both integers, offset in [0, length], len >= 0
 * (a len past the end is clamped by the caller). Fractional or NaN lengths would corrupt the
 * free-running indices (push(NaN) used to reset the write index; pop(2.5) copied 3 samples and
 * advanced 2), so they are errors.
 * @throws RingBufferError naming the method and the bad value
 */
function checkSpan(method: string, length: number, offset: number, len: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset > length) {
    throw new RingBufferError(`RingBuffer.${method}: offset must be an integer in [0, ${length}], got ${offset}`);
  }
  if (!Number.isInteger(len) || len < 0) throw new RingBufferError(`RingBuffer.${method}: length must be a non-negative integer, got ${len}`);
}

/** @throws RingBufferError unless timeoutMs is a number >= 0 (Infinity allowed; NaN would be no timeout at all for Atomics.wait). */
function checkTimeout(method: string, timeoutMs: number): void {
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) throw new RingBufferError(`RingBuffer.${method}: timeout must be a number of milliseconds >= 0, got ${timeoutMs}`);
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

export class RingBuffer {
  /** Backing buffer: post it to the other thread and wrap it with `new RingBuffer(buffer)` there. */
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
  /** Number of sample slots (a power of two). */
  readonly capacity: number;
  private readonly mask: number;
  private readonly idx: Int32Array;
  private readonly data: Float32Array;

  /**
   * Bytes a backing buffer needs for `capacity` samples.
   * @throws RingBufferError unless capacity is a power of two in [1, 2^30].
   */
  static bytesFor(capacity: number): number {
    if (!isPow2(capacity) || capacity > RING_MAX_CAPACITY) {
      throw new RingBufferError(`ring capacity must be a power of two in [1, 2^30], got ${capacity}`);
    }
    return RING_HEADER_BYTES + 4 * capacity;
  }

  /**
   * Allocates a ring of at least `minCapacity` samples (rounded up to a power of two).
   * @param shared true (default): SharedArrayBuffer, shareable across threads (needs cross-origin
   *   isolation in a browser); false: a plain ArrayBuffer for use inside a single thread.
   * @throws RingBufferError when shared is requested but SharedArrayBuffer is unavailable.
   */
  static create(minCapacity: number, shared = true): RingBuffer {
    if (!(minCapacity >= 1) || minCapacity > RING_MAX_CAPACITY) {
      throw new RingBufferError(`ring capacity must be in [1, 2^30], got ${minCapacity}`);
    }
    let cap = 1;
    while (cap < minCapacity) cap *= 2;
    const bytes = RingBuffer.bytesFor(cap);
    if (shared && typeof SharedArrayBuffer === 'undefined') {
      throw new RingBufferError(
        'SharedArrayBuffer is unavailable: serve the page cross-origin isolated (COOP: same-origin, COEP: require-corp) or use the AUDIO_CHUNK message path',
      );
    }
    return new RingBuffer(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  }

  /**
   * Wraps an existing backing buffer (fresh from `create`/`bytesFor`, or received from another thread).
   * @throws RingBufferError when the byte length is not RING_HEADER_BYTES + 4·(power of two).
   */
  constructor(buffer: SharedArrayBuffer | ArrayBuffer) {
    const n = (buffer.byteLength - RING_HEADER_BYTES) / 4;
    if (!isPow2(n) || n > RING_MAX_CAPACITY) {
      throw new RingBufferError(
        `ring backing buffer of ${buffer.byteLength} bytes is not ${RING_HEADER_BYTES} + 4·(power of two): use RingBuffer.bytesFor(capacity)`,
      );
    }
    this.buffer = buffer;
    this.capacity = n;
    this.mask = n - 1;
    this.idx = new Int32Array(buffer, 0, RING_HEADER_BYTES / 4);
    this.data = new Float32Array(buffer, RING_HEADER_BYTES, n);
  }

  /** Free-running write index (samples ever pushed, mod 2^32, as an Int32: compare with `(a - b) | 0`). */
  writeIndex(): number {
    return Atomics.load(this.idx, WRITE);
  }

  /** Free-running read index (samples ever popped or skipped, mod 2^32, as an Int32). */
  readIndex(): number {
    return Atomics.load(this.idx, READ);
  }

  /**
   * Producer: publishes the anchor (current write index, `stamp`): "the sample that will be
   * written at this index has clock value `stamp`" (e.g. the capture worklet's AudioContext time
   * in 24 kHz samples, src/audio/frame_stamps.ts). The consumer reads it with `readStamp` and
   * dates any sample k as `stamp - (index - k)` while the producer writes without gaps. A
   * seqlock on the producer's cache line keeps the pair consistent; no allocation (audio-thread safe).
   * @param stamp an Int32 (clock values wrap mod 2^32; differences with `| 0`)
   */
  publishStamp(stamp: number): void {
    const seq = Atomics.load(this.idx, STAMP_SEQ);
    Atomics.store(this.idx, STAMP_SEQ, (seq + 1) | 0);
    Atomics.store(this.idx, STAMP_INDEX, Atomics.load(this.idx, WRITE));
    Atomics.store(this.idx, STAMP_VALUE, stamp | 0);
    Atomics.store(this.idx, STAMP_SEQ, (seq + 2) | 0);
  }

  /**
   * Any thread: the producer's latest anchor `{ index, stamp }` (see `publishStamp`), or null
   * when none was published yet (or the producer is publishing right now 64 times in a row).
   */
  readStamp(): { index: number; stamp: number } | null {
    for (let tries = 0; tries < 64; tries++) {
      const s1 = Atomics.load(this.idx, STAMP_SEQ);
      if (s1 === 0) return null;
      if (s1 & 1) continue;
      const index = Atomics.load(this.idx, STAMP_INDEX);
      const stamp = Atomics.load(this.idx, STAMP_VALUE);
      if (Atomics.load(this.idx, STAMP_SEQ) === s1) return { index, stamp };
    }
    return null;
  }

  /** True when the backing buffer is a SharedArrayBuffer. */
  get isShared(): boolean {
    return typeof SharedArrayBuffer !== 'undefined' && this.buffer instanceof SharedArrayBuffer;
  }

  /** Samples ready to pop (exact for the consumer; a lower bound for anyone else). */
  availableRead(): number {
    return (Atomics.load(this.idx, WRITE) - Atomics.load(this.idx, READ)) >>> 0;
  }

  /** Free slots for push (exact for the producer; a lower bound for anyone else). */
  availableWrite(): number {
    return this.capacity - this.availableRead();
  }

  isEmpty(): boolean {
    return this.availableRead() === 0;
  }

  isFull(): boolean {
    return this.availableRead() === this.capacity;
  }

  /**
   * Producer: copies up to `len` samples from `src[offset..]` into the ring.
   * @returns how many were written (less than len when the ring is full; 0 when full). No allocation.
   * @throws RingBufferError when offset is not an integer in [0, src.length] or len not an integer >= 0
   */
  push(src: Float32Array, offset = 0, len = src.length - offset): number {
    checkSpan('push', src.length, offset, len);
    const w = Atomics.load(this.idx, WRITE);
    const r = Atomics.load(this.idx, READ);
    const free = this.capacity - ((w - r) >>> 0);
    const n = Math.max(0, Math.min(len, free, src.length - offset));
    if (n === 0) return 0;
    const start = w & this.mask;
    const first = Math.min(n, this.capacity - start);
    const data = this.data;
    for (let i = 0; i < first; i++) data[start + i] = src[offset + i];
    for (let i = first; i < n; i++) data[i - first] = src[offset + i];
    Atomics.store(this.idx, WRITE, (w + n) | 0);
    Atomics.notify(this.idx, WRITE);
    return n;
  }

  /**
   * Producer: writes `len` zeros (e.g. to pre-roll a jitter buffer).
   * @returns how many were written.
   * @throws RingBufferError when len is not an integer >= 0
   */
  pushSilence(len: number): number {
    checkSpan('pushSilence', 0, 0, len);
    const w = Atomics.load(this.idx, WRITE);
    const r = Atomics.load(this.idx, READ);
    const n = Math.max(0, Math.min(len, this.capacity - ((w - r) >>> 0)));
    for (let i = 0; i < n; i++) this.data[(w + i) & this.mask] = 0;
    if (n > 0) {
      Atomics.store(this.idx, WRITE, (w + n) | 0);
      Atomics.notify(this.idx, WRITE);
    }
    return n;
  }

  /**
   * Consumer: moves up to `len` samples into `dst[offset..]`.
   * @returns how many were read (0 when empty). No allocation.
   * @throws RingBufferError when offset is not an integer in [0, dst.length] or len not an integer >= 0
   */
  pop(dst: Float32Array, offset = 0, len = dst.length - offset): number {
    checkSpan('pop', dst.length, offset, len);
    const r = Atomics.load(this.idx, READ);
    const w = Atomics.load(this.idx, WRITE);
    const n = Math.max(0, Math.min(len, (w - r) >>> 0, dst.length - offset));
    if (n === 0) return 0;
    const start = r & this.mask;
    const first = Math.min(n, this.capacity - start);
    const data = this.data;
    for (let i = 0; i < first; i++) dst[offset + i] = data[start + i];
    for (let i = first; i < n; i++) dst[offset + i] = data[i - first];
    Atomics.store(this.idx, READ, (r + n) | 0);
    return n;
  }

  /**
   * Consumer: discards up to `n` of the oldest samples.
   * @returns how many were discarded.
   * @throws RingBufferError when n is not an integer >= 0
   */
  skip(n: number): number {
    checkSpan('skip', 0, 0, n);
    const r = Atomics.load(this.idx, READ);
    const w = Atomics.load(this.idx, WRITE);
    const k = Math.max(0, Math.min(n, (w - r) >>> 0));
    if (k > 0) Atomics.store(this.idx, READ, (r + k) | 0);
    return k;
  }

  /**
   * Consumer, blocking (dedicated Workers and Node worker_threads only; never the main thread or an
   * AudioWorklet): waits until at least `n` samples are readable or `timeoutMs` passes.
   * Needs a SharedArrayBuffer. @returns true when `n` samples are available.
   * @throws RingBufferError when n is not an integer in [0, capacity] or timeoutMs not a number >= 0
   */
  waitForRead(n: number, timeoutMs: number): boolean {
    checkSpan('waitForRead', 0, 0, n);
    checkTimeout('waitForRead', timeoutMs);
    if (n > this.capacity) throw new RingBufferError(`waitForRead(${n}) exceeds the ring capacity ${this.capacity}`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const w = Atomics.load(this.idx, WRITE);
      if (((w - Atomics.load(this.idx, READ)) >>> 0) >= n) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      Atomics.wait(this.idx, WRITE, w, left);
    }
  }

  /**
   * Consumer, non-blocking: resolves true when at least `n` samples are readable, false after
   * `timeoutMs`. Uses Atomics.waitAsync where present (Chromium, Node ≥ 16), else polls every 2 ms.
   * While it waits it holds a timer: Node does not keep a worker_thread's event loop alive for a
   * pending Atomics.waitAsync alone, so a Node worker whose only work is this wait would
   * otherwise exit (code 0) before the producer writes.
   * @throws RingBufferError when n is not an integer in [0, capacity] or timeoutMs not a number >= 0
   */
  async waitForReadAsync(n: number, timeoutMs: number): Promise<boolean> {
    checkSpan('waitForReadAsync', 0, 0, n);
    checkTimeout('waitForReadAsync', timeoutMs);
    if (n > this.capacity) throw new RingBufferError(`waitForReadAsync(${n}) exceeds the ring capacity ${this.capacity}`);
    const deadline = Date.now() + timeoutMs;
    const waitAsync = (Atomics as unknown as {
      waitAsync?: (a: Int32Array, i: number, v: number, t: number) => { async: boolean; value: Promise<string> | string };
    }).waitAsync;
    for (;;) {
      const w = Atomics.load(this.idx, WRITE);
      if (((w - Atomics.load(this.idx, READ)) >>> 0) >= n) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      if (waitAsync && this.isShared) {
        const res = waitAsync(this.idx, WRITE, w, left);
        if (res.async) {
          const keepAlive = setTimeout(() => {}, left + 1); // see the docstring: Node workers
          try {
            await res.value;
          } finally {
            clearTimeout(keepAlive);
          }
        }
      } else {
        await new Promise((ok) => setTimeout(ok, Math.min(2, left)));
      }
    }
  }

  /**
   * Resets both indices to 0 (empties the ring). Only when neither side is running concurrently,
   * e.g. before the worklet starts or after both sides agreed to stop.
   */
  reset(): void {
    Atomics.store(this.idx, WRITE, 0);
    Atomics.store(this.idx, READ, 0);
    Atomics.store(this.idx, STAMP_SEQ, 0);
  }
}
