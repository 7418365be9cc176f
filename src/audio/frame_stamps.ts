/**
 * Frame stamps for the mic → speaker latency (issue #13).
 *
 * Clock: both worklets run on one AudioContext, whose render quanta are dated by `currentFrame`
 * (device samples). A stamp is that clock converted to 24 kHz samples (the models' rate), as an
 * Int32 that wraps mod 2^32: `modelClock(currentFrame, deviceRate)`; differences of stamps are
 * exact with `clockDiff` while they stay below 2^31 samples (24 h). Sample counts, not wall
 * clock: a test with a fake `currentFrame` gets the same numbers every run.
 *
 * Path of a stamp: the capture worklet dates the first sample of each 1920-sample input frame
 * (shared mode: an anchor in the input ring's header, RingBuffer.publishStamp, that the engine
 * turns into the stamp of the frame it pops; message mode: the stamp rides with the posted frame
 * and the AUDIO_CHUNK packet). The engine gives the reply frame computed from that input frame
 * the same stamp; the reply's (output-ring index, stamp) goes into a StampQueue the playback
 * worklet reads, and when the reply's first sample is played the worklet reports
 * (latency, play time) into a second StampQueue: pipeline latency = play start − capture stamp.
 */

/** The models' sample rate (also MODEL_RATE in worklet_shared.ts). */
const RATE = 24000;

/**
 * An AudioContext time in device samples (`currentFrame`, or a position inside a quantum) as a
 * stamp: 24 kHz samples, rounded, mod 2^32 as an Int32.
 */
export function modelClock(deviceFrame: number, deviceRate: number): number {
  return Math.round((deviceFrame * RATE) / deviceRate) | 0;
}

/** `a - b` of two stamps (Int32 clocks that wrap), in 24 kHz samples. */
export function clockDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** Stamp difference in milliseconds (24 kHz samples / 24). */
export function clockMs(samples: number): number {
  return (samples * 1000) / RATE;
}

/** Thrown for a bad StampQueue capacity or backing buffer. */
export class StampQueueError extends Error {
  override name = 'StampQueueError';
}

const HEAD = 0; // Int32 slot: records ever pushed (producer)
const TAIL = 16; // Int32 slot: records ever popped (consumer), own 64-byte line
const HEADER_INTS = 32;

/**
 * A lock-free single-producer single-consumer queue of (a, b) Int32 pairs over a
 * SharedArrayBuffer (or a plain ArrayBuffer inside one thread), as RingBuffer is for samples.
 * Layout (Int32 slots): [0] head, [16] tail, [32 + 2i, 32 + 2i + 2) record i mod capacity.
 * Neither side allocates: safe in an AudioWorklet's process().
 */
export class StampQueue {
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
  /** Records the queue holds at most. */
  readonly capacity: number;
  private readonly v: Int32Array;

  /** Bytes for `capacity` records. @throws StampQueueError unless capacity is an integer in [1, 2^20] */
  static bytesFor(capacity: number): number {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 20) throw new StampQueueError(`StampQueue capacity must be an integer in [1, 2^20], got ${capacity}`);
    return 4 * (HEADER_INTS + 2 * capacity);
  }

  /** A queue of `capacity` records; `shared` false gives a plain ArrayBuffer (one thread). @throws StampQueueError */
  static create(capacity: number, shared = typeof SharedArrayBuffer !== 'undefined'): StampQueue {
    const bytes = StampQueue.bytesFor(capacity);
    return new StampQueue(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  }

  /** Wraps a backing buffer from `create` (e.g. received from another thread). @throws StampQueueError on a wrong size */
  constructor(buffer: SharedArrayBuffer | ArrayBuffer) {
    const n = (buffer.byteLength / 4 - HEADER_INTS) / 2;
    if (!Number.isInteger(n) || n < 1) throw new StampQueueError(`StampQueue backing buffer of ${buffer.byteLength} bytes is not 4·(${HEADER_INTS} + 2·capacity)`);
    this.buffer = buffer;
    this.capacity = n;
    this.v = new Int32Array(buffer);
  }

  /** Records waiting (exact for the consumer). */
  size(): number {
    return (Atomics.load(this.v, HEAD) - Atomics.load(this.v, TAIL)) | 0;
  }

  /** Producer: appends (a, b); false (nothing written) when full. */
  push(a: number, b: number): boolean {
    const h = Atomics.load(this.v, HEAD);
    if (((h - Atomics.load(this.v, TAIL)) | 0) >= this.capacity) return false;
    const i = HEADER_INTS + 2 * ((h >>> 0) % this.capacity);
    Atomics.store(this.v, i, a | 0);
    Atomics.store(this.v, i + 1, b | 0);
    Atomics.store(this.v, HEAD, (h + 1) | 0);
    return true;
  }

  /** Consumer: field 0 (a) or 1 (b) of the oldest record; only when size() > 0. */
  peek(field: 0 | 1): number {
    const t = Atomics.load(this.v, TAIL);
    return Atomics.load(this.v, HEADER_INTS + 2 * ((t >>> 0) % this.capacity) + field);
  }

  /** Consumer: drops the oldest record (no-op when empty). */
  drop(): void {
    const t = Atomics.load(this.v, TAIL);
    if (((Atomics.load(this.v, HEAD) - t) | 0) > 0) Atomics.store(this.v, TAIL, (t + 1) | 0);
  }

  /** Consumer: removes every record, passing each to `each(a, b)` oldest first (allocates nothing itself). @returns how many */
  drain(each: (a: number, b: number) => void): number {
    let n = 0;
    while (this.size() > 0) {
      const a = this.peek(0);
      const b = this.peek(1);
      this.drop();
      each(a, b);
      n++;
    }
    return n;
  }
}
