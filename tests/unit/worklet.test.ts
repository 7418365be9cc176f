// The AudioWorklet processors in Node: the real worklet modules are imported with a minimal
// AudioWorkletProcessor / registerProcessor / sampleRate shim and fed 128-frame render quanta.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import { StreamingResampler, resample } from '../../src/audio/resample.ts';
import { RingBuffer } from '../../src/audio/ring_buffer.ts';
import { CAPTURE_PROCESSOR, PLAYBACK_PROCESSOR, type PlaybackCore, createAudioStats, readAudioStats } from '../../src/audio/worklet_shared.ts';

class ShimPort {
  sent: { message: unknown; transfer?: Transferable[] }[] = [];
  onmessage: ((ev: MessageEvent) => void) | null = null;
  postMessage(message: unknown, transfer?: Transferable[]) {
    this.sent.push({ message, transfer });
  }
  /** Simulates a message from the page arriving at the worklet. */
  receive(data: unknown) {
    this.onmessage?.({ data } as MessageEvent);
  }
}

type ProcessorCtor = new (options?: unknown) => { port: ShimPort; core: unknown; process(inputs: Float32Array[][], outputs: Float32Array[][]): boolean };
const registry = new Map<string, ProcessorCtor>();

beforeAll(async () => {
  const g = globalThis as Record<string, unknown>;
  g.AudioWorkletProcessor = class {
    readonly port = new ShimPort();
  };
  g.registerProcessor = (name: string, ctor: ProcessorCtor) => registry.set(name, ctor);
  g.sampleRate = 48000;
  await import('../../workers/audio_capture_worklet.ts');
  await import('../../workers/audio_playback_worklet.ts');
});

function make(name: string, processorOptions: Record<string, unknown>) {
  const Ctor = registry.get(name);
  if (!Ctor) throw new Error(`processor ${name} was not registered`);
  return new Ctor({ processorOptions });
}

const sine = (n: number, rate: number, hz: number, amp = 0.5) => Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * hz * i) / rate));

/** Feeds `x` to a capture processor in 128-frame blocks (as `channels` identical or given channels). */
function feedCapture(proc: { process(i: Float32Array[][], o: Float32Array[][]): boolean }, chans: Float32Array[]) {
  const block = chans.map(() => new Float32Array(128));
  for (let s = 0; s + 128 <= chans[0].length; s += 128) {
    chans.forEach((c, k) => block[k].set(c.subarray(s, s + 128)));
    expect(proc.process([block], [])).toBe(true);
  }
}

function maxDiff(a: Float32Array, b: Float32Array, n = Math.min(a.length, b.length)) {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function drain(ring: RingBuffer): Float32Array {
  const out = new Float32Array(ring.availableRead());
  ring.pop(out);
  return out;
}

describe('capture worklet', () => {
  it('registers both processors under their names', () => {
    expect([...registry.keys()].sort()).toEqual([CAPTURE_PROCESSOR, PLAYBACK_PROCESSOR].sort());
  });

  for (const rate of [48000, 44100, 24000]) {
    it(`resamples ${rate} Hz microphone blocks to 24 kHz into the input ring, equal to offline resampling`, () => {
      const ring = RingBuffer.create(65536);
      const stats = createAudioStats();
      const proc = make(CAPTURE_PROCESSOR, { ring: ring.buffer, stats: stats.buffer, deviceRate: rate });
      const x = sine(rate, rate, 440); // 1 s
      expect(proc.process([[]], [])).toBe(true); // a render quantum before the microphone is connected: not a block
      feedCapture(proc, [x]);
      const got = drain(ring);
      const ref = resample(x.subarray(0, Math.floor(x.length / 128) * 128), rate, 24000);
      // Streaming holds back the filter's lookahead; everything it did emit equals the offline result.
      expect(got.length).toBeGreaterThan(24000 - 200);
      expect(got.length).toBeLessThanOrEqual(ref.length);
      expect(maxDiff(got, ref, got.length)).toBeLessThan(1e-6);
      const s = readAudioStats(stats);
      expect(s.CAPTURE_BLOCKS).toBe(Math.floor(rate / 128));
      expect(s.CAPTURE_SAMPLES).toBe(got.length);
      expect(s.CAPTURE_OVERRUNS).toBe(0);
      expect(s.DEVICE_RATE).toBe(rate);
      expect(proc.port.sent.length).toBe(0); // shared mode: no messages
    });
  }

  it('mixes several input channels down to mono', () => {
    const ring = RingBuffer.create(4096);
    const proc = make(CAPTURE_PROCESSOR, { ring: ring.buffer, deviceRate: 24000 });
    const l = sine(1280, 24000, 300);
    const r = sine(1280, 24000, 700);
    feedCapture(proc, [l, r]);
    const got = drain(ring);
    expect(got.length).toBe(1280);
    for (let i = 0; i < 1280; i += 97) expect(got[i]).toBeCloseTo((l[i] + r[i]) / 2, 6);
  });

  it('counts overruns when the engine does not drain the input ring', () => {
    const ring = RingBuffer.create(1024);
    const stats = createAudioStats();
    const proc = make(CAPTURE_PROCESSOR, { ring: ring.buffer, stats: stats.buffer, deviceRate: 24000 });
    feedCapture(proc, [sine(2048, 24000, 100)]);
    const s = readAudioStats(stats);
    expect(s.CAPTURE_SAMPLES).toBe(1024);
    expect(s.CAPTURE_DROPPED).toBe(1024);
    expect(s.CAPTURE_OVERRUNS).toBe(8);
  });

  it('zeroes NaN, infinite and absurd microphone samples before resampling, and counts them', () => {
    const ring = RingBuffer.create(8192);
    const stats = createAudioStats();
    const proc = make(CAPTURE_PROCESSOR, { ring: ring.buffer, stats: stats.buffer, deviceRate: 48000 });
    const x = sine(3840, 48000, 440);
    const clean = x.slice();
    for (const [i, v] of [[5, NaN], [300, Infinity], [301, -Infinity], [2000, 1e30], [2001, -17]] as const) {
      x[i] = v;
      clean[i] = 0;
    }
    feedCapture(proc, [x]);
    const got = drain(ring);
    const want = resample(clean.subarray(0, 3840), 48000, 24000);
    expect(got.every((v) => Number.isFinite(v))).toBe(true);
    expect(maxDiff(got, want, got.length - 64)).toBeLessThan(1e-6); // the same as the cleaned input
    const s = readAudioStats(stats);
    expect(s.CAPTURE_BAD_SAMPLES).toBe(5);
    expect(s.CAPTURE_BAD_BLOCKS).toBe(3); // quanta 0, 2 and 15
  });

  it('ignores a block with no input channels (nothing connected yet)', () => {
    const ring = RingBuffer.create(1024);
    const proc = make(CAPTURE_PROCESSOR, { ring: ring.buffer, deviceRate: 48000 });
    expect(proc.process([], [])).toBe(true);
    expect(proc.process([[]], [])).toBe(true);
    expect(ring.availableRead()).toBe(0);
  });

  it('message mode: posts preallocated 1920-sample frames (transferred), reuses recycled ones, counts misses', () => {
    const stats = createAudioStats();
    const proc = make(CAPTURE_PROCESSOR, { stats: stats.buffer, deviceRate: 48000, poolFrames: 2 });
    const x = sine(48000, 48000, 440);
    feedCapture(proc, [x.subarray(0, 128 * 90)]); // 11520 in → ~5760 out → 2 frames, pool exactly used
    expect(proc.port.sent.length).toBe(2);
    expect(readAudioStats(stats).CAPTURE_POOL_MISSES).toBe(0);
    const frames = proc.port.sent.map((m) => (m.message as { type: string; pcm: Float32Array }));
    for (const [i, m] of frames.entries()) {
      expect(m.type).toBe('frame');
      expect(m.pcm.length).toBe(1920);
      expect(proc.port.sent[i].transfer).toEqual([m.pcm.buffer]);
    }
    // Recycle one frame, then produce two more: one reuses it, one is a counted miss.
    proc.port.receive({ type: 'recycle', pcm: frames[0].pcm });
    feedCapture(proc, [x.subarray(128 * 90, 128 * 150)]);
    expect(proc.port.sent.length).toBe(4);
    expect((proc.port.sent[2].message as { pcm: Float32Array }).pcm).toBe(frames[0].pcm);
    expect(readAudioStats(stats).CAPTURE_POOL_MISSES).toBe(1);
    expect(readAudioStats(stats).CAPTURE_FRAMES_POSTED).toBe(4);
    // Frame contents are the continuous resampled stream.
    const ref = resample(x.subarray(0, 128 * 150), 48000, 24000);
    const f3 = (proc.port.sent[3].message as { pcm: Float32Array }).pcm;
    expect(maxDiff(f3, ref.subarray(3 * 1920, 4 * 1920))).toBeLessThan(1e-6);
    // Stats on request, answered from the message handler.
    proc.port.receive({ type: 'stats' });
    const last = proc.port.sent.at(-1)!.message as { type: string; stats: Record<string, number> };
    expect(last.type).toBe('stats');
    expect(last.stats.CAPTURE_FRAMES_POSTED).toBe(4);
  });
});

/** Runs `blocks` playback quanta of 128 frames and returns the concatenated first channel. */
function runPlayback(proc: { process(i: Float32Array[][], o: Float32Array[][]): boolean }, blocks: number, channels = 1): Float32Array {
  const out = new Float32Array(blocks * 128);
  const chans = Array.from({ length: channels }, () => new Float32Array(128).fill(NaN));
  for (let b = 0; b < blocks; b++) {
    expect(proc.process([], [chans])).toBe(true);
    for (let c = 1; c < channels; c++) expect(Array.from(chans[c])).toEqual(Array.from(chans[0]));
    out.set(chans[0], b * 128);
  }
  return out;
}

describe('playback worklet', () => {
  it('24 kHz device: waits for the jitter target, plays exactly, underruns grow the target', () => {
    const ring = RingBuffer.create(16384);
    const stats = createAudioStats();
    const proc = make(PLAYBACK_PROCESSOR, { ring: ring.buffer, stats: stats.buffer, deviceRate: 24000, jitter: { initial: 1920, step: 960, max: 3840 } });
    const ramp = Float32Array.from({ length: 1920 }, (_, i) => (i + 1) / 2000);
    ring.push(ramp.subarray(0, 1000));
    expect(Array.from(runPlayback(proc, 2)).every((v) => v === 0)).toBe(true); // below target: silence
    expect(readAudioStats(stats).PLAY_STATE).toBe(0);
    ring.push(ramp.subarray(1000));
    const played = runPlayback(proc, 15, 2); // 1920 samples, stereo output
    expect(maxDiff(played, ramp)).toBe(0);
    expect(readAudioStats(stats).PLAY_UNDERRUNS).toBe(0);
    expect(readAudioStats(stats).PLAY_STATE).toBe(1);
    ring.push(ramp.subarray(0, 64));
    const tail = runPlayback(proc, 1);
    expect(Array.from(tail.subarray(0, 64))).toEqual(Array.from(ramp.subarray(0, 64)));
    expect(Array.from(tail.subarray(64)).every((v) => v === 0)).toBe(true);
    let s = readAudioStats(stats);
    expect(s.PLAY_UNDERRUNS).toBe(1);
    expect(s.PLAY_JITTER_TARGET).toBe(2880);
    expect(s.PLAY_STATE).toBe(0);
    // Re-buffering to the larger target: 1920 samples are no longer enough.
    ring.push(ramp);
    expect(Array.from(runPlayback(proc, 1)).every((v) => v === 0)).toBe(true);
    ring.push(ramp.subarray(0, 960));
    expect(runPlayback(proc, 1)[0]).toBe(ramp[0]);
    // Empty the ring again twice: the target grows to the cap and stays there.
    runPlayback(proc, 30);
    ring.push(new Float32Array(3840).fill(0.1));
    runPlayback(proc, 40);
    s = readAudioStats(stats);
    expect(s.PLAY_UNDERRUNS).toBe(3);
    expect(s.PLAY_JITTER_TARGET).toBe(3840);
    expect(s.PLAY_SAMPLES).toBe(1920 + 64 + 1920 + 960 + 3840);
  });

  /** `x` after the playback resampler's lookahead of silence (PlaybackCore primes its resampler with it). */
  const primed = (x: Float32Array, deviceRate: number) => {
    const H = new StreamingResampler(24000, deviceRate).design.halfTaps;
    const out = new Float32Array(H + x.length);
    out.set(x, H);
    return out;
  };

  it('48 kHz device: the played stream equals offline 24 → 48 kHz resampling (after the primed lookahead)', () => {
    const ring = RingBuffer.create(65536);
    const stats = createAudioStats();
    const proc = make(PLAYBACK_PROCESSOR, { ring: ring.buffer, stats: stats.buffer, deviceRate: 48000, jitter: { initial: 1920, maxExcess: 1e6 } });
    const x = sine(24000, 24000, 1000, 0.4);
    ring.push(x);
    const played = runPlayback(proc, 300); // 38400 samples at 48 kHz = 0.8 s
    // The playback resampler starts with its lookahead of silence (halfTaps zeros: no underrun at the first frame boundary).
    const ref = resample(primed(x, 48000), 24000, 48000);
    expect(maxDiff(played, ref, played.length)).toBeLessThan(1e-6);
    expect(readAudioStats(stats).PLAY_UNDERRUNS).toBe(0);
  });

  it('44.1 kHz device: plays continuously and consumes the ring at 24/44.1 of the device rate', () => {
    const ring = RingBuffer.create(65536);
    const stats = createAudioStats();
    const proc = make(PLAYBACK_PROCESSOR, { ring: ring.buffer, stats: stats.buffer, deviceRate: 44100, jitter: { maxExcess: 1e6 } });
    ring.push(sine(24000, 24000, 500));
    const played = runPlayback(proc, 300); // 0.87 s at 44.1 kHz
    const ref = resample(primed(sine(24000, 24000, 500), 44100), 24000, 44100);
    expect(maxDiff(played, ref, played.length)).toBeLessThan(1e-6);
    const used = readAudioStats(stats).PLAY_SAMPLES;
    expect(used).toBeGreaterThanOrEqual(Math.floor((300 * 128 * 24000) / 44100));
    expect(used).toBeLessThan((300 * 128 * 24000) / 44100 + 300); // resampler lookahead + one pull
  });

  it('skips ahead when the producer runs far beyond the target (latency cap)', () => {
    const ring = RingBuffer.create(32768);
    const stats = createAudioStats();
    const proc = make(PLAYBACK_PROCESSOR, { ring: ring.buffer, stats: stats.buffer, deviceRate: 24000, jitter: { initial: 1920, maxExcess: 3840 } });
    ring.push(new Float32Array(10000).fill(0.2));
    runPlayback(proc, 1);
    const s = readAudioStats(stats);
    expect(s.PLAY_OVERRUNS).toBe(1);
    expect(s.PLAY_SKIPPED).toBe(10000 - 1920);
    expect(s.PLAY_FILL).toBe(1920 - 128);
  });

  it('message mode: frames from the port fill a local ring, come back recycled; flush empties it', () => {
    const stats = createAudioStats();
    const proc = make(PLAYBACK_PROCESSOR, { stats: stats.buffer, deviceRate: 24000, localCapacity: 4096 });
    const frame = Float32Array.from({ length: 1920 }, (_, i) => i / 1920);
    proc.port.receive({ type: 'frame', pcm: frame });
    expect(proc.port.sent[0].message).toEqual({ type: 'recycle', pcm: frame });
    expect(proc.port.sent[0].transfer).toEqual([frame.buffer]);
    const out = runPlayback(proc, 15);
    expect(maxDiff(out, frame)).toBe(0);
    proc.port.receive({ type: 'frame', pcm: frame });
    proc.port.receive({ type: 'frame', pcm: frame });
    proc.port.receive({ type: 'frame', pcm: frame }); // 5760 > 4096: overflow counted
    expect(readAudioStats(stats).PLAY_FRAME_OVERFLOWS).toBe(1);
    proc.port.receive({ type: 'flush' });
    expect((proc.core as PlaybackCore).ring.availableRead()).toBe(0);
    expect(Array.from(runPlayback(proc, 2)).every((v) => v === 0)).toBe(true);
  });
});

describe('audio-thread rule', () => {
  it('process() allocates nothing in steady state (heap unchanged over thousands of quanta)', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const inRing = RingBuffer.create(65536);
    const outRing = RingBuffer.create(65536);
    const cap = make(CAPTURE_PROCESSOR, { ring: inRing.buffer, deviceRate: 44100 });
    const play = make(PLAYBACK_PROCESSOR, { ring: outRing.buffer, deviceRate: 48000 });
    const mic = [new Float32Array(128).fill(0.25), new Float32Array(128).fill(-0.25)];
    const spk = [new Float32Array(128), new Float32Array(128)];
    const scratch = new Float32Array(4096);
    const capIn = [mic];
    const playOut = [spk];
    const none: Float32Array[][] = [];
    const step = (n: number) => {
      for (let i = 0; i < n; i++) {
        cap.process(capIn, none);
        play.process(none, playOut);
        // Engine side (not the audio thread): keep both rings moving.
        if (inRing.availableRead() >= 1920) {
          inRing.pop(scratch, 0, 1920);
          outRing.push(scratch, 0, 1920);
        }
      }
    };
    // Unoptimised (interpreted) code boxes floats and JIT tiers allocate code while warming up, so
    // measure rounds of 20000 quanta until one is allocation-free; an allocation in process() (e.g.
    // one Float32Array(128) per quantum, ~12 MB a round) never gets there.
    const growth: number[] = [];
    for (let round = 0; round < 8; round++) {
      gc();
      const before = process.memoryUsage().heapUsed;
      step(20000);
      growth.push(process.memoryUsage().heapUsed - before);
      if (growth.at(-1)! < 16 * 1024) break;
    }
    expect(Math.min(...growth), `heap growth per round of 20000 quanta: ${growth.join(', ')} bytes`).toBeLessThan(16 * 1024);
    expect(cap.port.sent.length + play.port.sent.length).toBe(0);
  });
});
