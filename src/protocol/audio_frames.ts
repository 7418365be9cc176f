/**
 * PCM over AUDIO_CHUNK packets: the path used when SharedArrayBuffer is unavailable (page not
 * cross-origin isolated) and in file-input mode. Frames are 1920 samples (80 ms at 24 kHz).
 *
 * - PcmFramer: batches arbitrary-length blocks (e.g. 128-frame worklet quanta) into fixed frames
 *   in a preallocated buffer; no allocation per push.
 * - FramePool: preallocated Float32Array frames to transfer across a port and get back.
 * - pcmToFrames: splits a whole clip (file input) into frames, zero-padding the last.
 * - RingToChannel / ChannelToRing: move frames between a RingBuffer and a Channel.
 */
import type { Channel } from './channel.ts';
import { AUDIO_CHUNK_SAMPLES, type Packet, PacketType } from './packet.ts';

/**
 * The reading end of a sample ring, as src/audio/ring_buffer.ts RingBuffer has it (declared here
 * so the protocol stays below audio: audio imports the frame constants from protocol).
 */
export interface SampleRingReader {
  /** Samples ready to pop. */
  availableRead(): number;
  /** Pops up to `dst.length` samples into `dst`; returns how many. */
  pop(dst: Float32Array): number;
}

/** The writing end of a sample ring (RingBuffer.push): returns how many samples fitted. */
export interface SampleRingWriter {
  push(src: Float32Array): number;
}

/**
 * Collects samples into frames of `frameSize`; calls `onFrame(frame)` synchronously with its own
 * preallocated buffer each time one fills (copy or transfer it before returning if you keep it).
 */
export class PcmFramer {
  private readonly frame: Float32Array;
  private fill = 0;

  constructor(private readonly onFrame: (frame: Float32Array) => void, readonly frameSize = AUDIO_CHUNK_SAMPLES) {
    if (!Number.isInteger(frameSize) || frameSize < 1) throw new RangeError(`PcmFramer: frameSize must be a positive integer, got ${frameSize}`);
    this.frame = new Float32Array(frameSize);
  }

  /** Samples waiting in the current partial frame. */
  get buffered(): number {
    return this.fill;
  }

  /** Appends `len` samples of `src` from `offset`; emits every completed frame. */
  push(src: Float32Array, offset = 0, len = src.length - offset): void {
    let i = offset;
    const end = offset + Math.max(0, Math.min(len, src.length - offset));
    while (i < end) {
      const n = Math.min(end - i, this.frameSize - this.fill);
      for (let k = 0; k < n; k++) this.frame[this.fill + k] = src[i + k];
      this.fill += n;
      i += n;
      if (this.fill === this.frameSize) {
        this.fill = 0;
        this.onFrame(this.frame);
      }
    }
  }

  /** Zero-pads and emits the partial frame, if any (end of a file). @returns true when one was emitted. */
  flushPadded(): boolean {
    if (this.fill === 0) return false;
    this.frame.fill(0, this.fill);
    this.fill = 0;
    this.onFrame(this.frame);
    return true;
  }

  /** Drops the partial frame. */
  reset(): void {
    this.fill = 0;
  }
}

/**
 * A fixed set of preallocated frames, handed out with `take()` and returned with `give()` (e.g.
 * after a transferred buffer comes back from the other side). `misses` counts `take()` calls that
 * found the pool empty and had to allocate.
 */
export class FramePool {
  private readonly free: Float32Array[] = [];
  misses = 0;

  constructor(count: number, readonly frameSize = AUDIO_CHUNK_SAMPLES) {
    for (let i = 0; i < count; i++) this.free.push(new Float32Array(frameSize));
  }

  get available(): number {
    return this.free.length;
  }

  /** A frame from the pool, or a fresh one (counted in `misses`) when the pool is empty. */
  take(): Float32Array {
    const f = this.free.pop();
    if (f) return f;
    this.misses++;
    return new Float32Array(this.frameSize);
  }

  /** Returns a frame of the right size to the pool (others are ignored). */
  give(frame: Float32Array): void {
    if (frame.length === this.frameSize && frame.buffer.byteLength > 0) this.free.push(frame);
  }
}

/** Splits a 24 kHz clip into 1920-sample frames; the last is zero-padded. Empty input: no frames. */
export function pcmToFrames(pcm: Float32Array, frameSize = AUDIO_CHUNK_SAMPLES): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < pcm.length; i += frameSize) {
    const f = new Float32Array(frameSize);
    f.set(pcm.subarray(i, Math.min(i + frameSize, pcm.length)));
    out.push(f);
  }
  return out;
}

/**
 * Sends every complete 1920-sample frame readable from `ring` as an AUDIO_CHUNK on `channel`
 * (e.g. page side, capture ring → engine Worker, when the Worker cannot share the ring).
 */
export class RingToChannel {
  private readonly scratch = new Float32Array(AUDIO_CHUNK_SAMPLES);

  constructor(private readonly ring: SampleRingReader, private readonly channel: Channel) {}

  /** Sends all complete frames now readable. @returns frames sent. */
  pump(): number {
    let frames = 0;
    while (this.ring.availableRead() >= AUDIO_CHUNK_SAMPLES) {
      this.ring.pop(this.scratch);
      this.channel.sendAudio(this.scratch);
      frames++;
    }
    return frames;
  }
}

/**
 * Writes incoming AUDIO_CHUNK packets into `ring` (e.g. engine output → playback ring).
 * Samples that do not fit are counted in `overflowSamples` (the ring is the jitter budget).
 * `detach()` unsubscribes.
 */
export class ChannelToRing {
  overflowSamples = 0;
  frames = 0;
  private readonly off: () => void;

  constructor(channel: Channel, private readonly ring: SampleRingWriter) {
    this.off = channel.on('packet', (p: Packet) => {
      if (p.type !== PacketType.AUDIO_CHUNK) return;
      this.frames++;
      const n = this.ring.push(p.pcm);
      this.overflowSamples += p.pcm.length - n;
    });
  }

  detach(): void {
    this.off();
  }
}
