import { describe, expect, it } from 'vitest';
import { ArrayFrameSink, ArrayFrameSource, EngineDriver } from '../../src/engine/driver.ts';
import { Engine, EngineError, type LmFrame, type LoopCodec, type LoopLm } from '../../src/engine/engine.ts';
import { FRAME_SAMPLES, LoopMetrics, percentiles } from '../../src/engine/metrics.ts';

// Test doubles with exact, checkable arithmetic: the codec "encodes" a frame to the rounded
// mean of its samples (x1000) per codebook, "decodes" codes to a constant frame; the LM delays
// by one step like LMGen (max_delay 1) and echoes the user's codes.
class EchoCodec implements LoopCodec {
  encodes = 0;
  decodes: Int32Array[] = [];
  constructor(private readonly k: number) {}
  async encode(pcm: Float32Array): Promise<Int32Array> {
    this.encodes++;
    let s = 0;
    for (const v of pcm) s += v;
    return new Int32Array(this.k).fill(Math.round((s / pcm.length) * 1000));
  }
  async decode(codes: Int32Array, frames: number): Promise<Float32Array> {
    this.decodes.push(codes.slice());
    return new Float32Array(frames * FRAME_SAMPLES).fill(codes[0] / 1000);
  }
  reset(): void {
    this.encodes = 0;
  }
}
class DelayLm implements LoopLm {
  private prev: Int32Array | null = null;
  async step(user: Int32Array): Promise<LmFrame | null> {
    const p = this.prev;
    this.prev = user.slice();
    return p ? { text: p[0] === 0 ? 3 : 7, audio: p } : null;
  }
  reset(): void {
    this.prev = null;
  }
}

describe('percentiles', () => {
  it('nearest rank over odd and even counts', () => {
    expect(percentiles([])).toEqual({ p50: 0, p95: 0, max: 0, mean: 0 });
    const p = percentiles([5, 1, 3, 2, 4]);
    expect(p.p50).toBe(3);
    expect(p.p95).toBe(5);
    expect(p.max).toBe(5);
    expect(p.mean).toBe(3);
    const q = percentiles(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(q.p50).toBe(50);
    expect(q.p95).toBe(95);
  });
});

describe('LoopMetrics', () => {
  it('counts steps over the 80 ms budget and keeps a window', () => {
    const m = new LoopMetrics(3);
    for (const t of [10, 90, 20, 100]) m.record({ encodeMs: 1, lmMs: 2, decodeMs: 3, totalMs: t }, t > 15, 1);
    const s = m.snapshot();
    expect(s.steps).toBe(4);
    expect(s.overBudget).toBe(2);
    expect(s.tokenSteps).toBe(3);
    expect(s.stepMs.max).toBe(100); // window holds 90, 20, 100
    expect(s.stepMs.p50).toBe(90);
    expect(s.budgetMs).toBe(80);
    m.setTransport({ underruns: 4, droppedPackets: { AUDIO_CHUNK: 2 } });
    expect(m.snapshot().droppedPackets).toEqual({ AUDIO_CHUNK: 2 });
    m.reset();
    expect(m.snapshot().steps).toBe(0);
    expect(() => new LoopMetrics(0)).toThrow(/capacity/);
  });
});

describe('Engine + driver', () => {
  it('one step per 1920-sample frame, silence while the LM returns null, decode of the audio tokens', async () => {
    const codec = new EchoCodec(4);
    const engine = new Engine({ codec, lm: new DelayLm() }, null, { userCodebooks: 4, depQ: 4 });
    // 3 frames + 100 samples: the tail frame is zero-padded.
    const pcm = new Float32Array(3 * FRAME_SAMPLES + 100);
    for (let t = 0; t < 3; t++) pcm.fill((t + 1) * 0.1, t * FRAME_SAMPLES, (t + 1) * FRAME_SAMPLES);
    pcm.fill(0.5, 3 * FRAME_SAMPLES);
    const sink = new ArrayFrameSink();
    const texts: (string | null)[] = [];
    await new EngineDriver(engine, new ArrayFrameSource(pcm), sink, { onStep: (r) => texts.push(r.text) }).run();
    expect(sink.frames.length).toBe(4);
    expect(sink.frames[0].every((v) => v === 0)).toBe(true);
    expect(sink.frames[1][0]).toBeCloseTo(0.1, 6);
    expect(sink.frames[3][1919]).toBeCloseTo(0.3, 6);
    expect(codec.decodes.length).toBe(3);
    expect(texts).toEqual([null, '[7]', '[7]', '[7]']);
    const s = engine.metrics.snapshot();
    expect(s.steps).toBe(4);
    expect(s.tokenSteps).toBe(3);
    expect(s.textTokens).toBe(3);
    engine.tokenizer = { decodePiece: (id) => `\u2581w${id}` };
    expect(engine.textOf(7)).toBe(' w7');
    expect(engine.textOf(3)).toBeNull();
    expect(engine.textOf(0)).toBeNull();
  });

  it('rejects wrong frame sizes, concurrent steps and mismatched models with named errors', async () => {
    const engine = new Engine({ codec: new EchoCodec(4), lm: new DelayLm() }, null, { userCodebooks: 8 });
    await expect(engine.step(new Float32Array(960))).rejects.toThrow(/exactly 1920 samples.*got 960/);
    await expect(engine.step(new Float32Array(FRAME_SAMPLES))).rejects.toThrow(/returned 4 codes.*expects 8/);
    const ok = new Engine({ codec: new EchoCodec(4), lm: new DelayLm() });
    const a = ok.step(new Float32Array(FRAME_SAMPLES));
    await expect(ok.step(new Float32Array(FRAME_SAMPLES))).rejects.toBeInstanceOf(EngineError);
    await a;
    ok.reset();
    expect(ok.steps).toBe(0);
  });

  it('the driver reports step errors and stops', async () => {
    const bad: LoopCodec = { encode: async () => { throw new Error('device lost'); }, decode: async () => new Float32Array(0), reset: () => {} };
    const errors: unknown[] = [];
    const d = new EngineDriver(new Engine({ codec: bad, lm: new DelayLm() }), new ArrayFrameSource(new Float32Array(FRAME_SAMPLES)), new ArrayFrameSink(), { onError: (e) => errors.push(e) });
    await expect(d.run()).rejects.toThrow('device lost');
    expect(errors.length).toBe(1);
    expect(d.isRunning).toBe(false);
  });
});

describe('ring endpoints, tokens.json, conditions', () => {
  it('RingFrameSource reads whole frames only; the sink drops a frame that does not fit', async () => {
    const { RingBuffer } = await import('../../src/audio/ring_buffer.ts');
    const { RingFrameSink, RingFrameSource } = await import('../../src/engine/ring_io.ts');
    const ring = RingBuffer.create(8192, false);
    const src = new RingFrameSource(ring);
    const out = new Float32Array(FRAME_SAMPLES);
    ring.push(Float32Array.from({ length: 1000 }, (_, i) => i));
    expect(src.pull(out)).toBe(false);
    ring.push(Float32Array.from({ length: 1000 }, (_, i) => 1000 + i));
    expect(src.pull(out)).toBe(true);
    expect(out[0]).toBe(0);
    expect(out[1919]).toBe(1919);
    expect(src.queued()).toBe(80);
    const sinkRing = RingBuffer.create(4096, false);
    const sink = new RingFrameSink(sinkRing);
    expect(sink.push(new Float32Array(FRAME_SAMPLES))).toBe(true);
    expect(sink.push(new Float32Array(FRAME_SAMPLES))).toBe(true);
    expect(sink.push(new Float32Array(FRAME_SAMPLES))).toBe(false); // 3840 of 4096 used
    expect(sink.queued()).toBe(2 * FRAME_SAMPLES);
  });

  it('skipDecode: the LM still runs and its text goes out, the output is silence, the metrics count it', async () => {
    const codec = new EchoCodec(2);
    const engine = new Engine({ codec, lm: new DelayLm() }, null, { userCodebooks: 2, depQ: 2 });
    const frame = (v: number) => new Float32Array(FRAME_SAMPLES).fill(v);
    const a = await engine.step(frame(0.1), { skipDecode: true }); // LM returns null: nothing to skip
    expect(a.frame).toBeNull();
    expect(a.decodeSkipped).toBe(false);
    const b = await engine.step(frame(0.2), { skipDecode: true });
    expect(b.frame?.audio).toEqual(Int32Array.from([100, 100]));
    expect(b.text).toBe('[7]');
    expect(b.decodeSkipped).toBe(true);
    expect(b.pcm.every((x) => x === 0)).toBe(true);
    expect(b.timings.decodeMs).toBe(0);
    expect(codec.decodes.length).toBe(0);
    const c = await engine.step(frame(0.3));
    expect(c.decodeSkipped).toBe(false);
    expect(c.frame?.audio).toEqual(Int32Array.from([200, 200])); // the LM stream went on
    expect(c.pcm[0]).toBeCloseTo(0.2, 6);
    expect(engine.metrics.snapshot().skippedDecodes).toBe(1);
  });

  it('driver backpressure: a backlog of two frames skips decodes until it is below one frame; pressure skips too; no input is dropped', async () => {
    const codec = new EchoCodec(1);
    const engine = new Engine({ codec, lm: new DelayLm() }, null, { userCodebooks: 1, depQ: 1 });
    // 6 frames queued at once: the loop starts 5 frames behind real time.
    const pcm = new Float32Array(6 * FRAME_SAMPLES);
    for (let t = 0; t < 6; t++) pcm.fill((t + 1) / 100, t * FRAME_SAMPLES, (t + 1) * FRAME_SAMPLES);
    const sink = new ArrayFrameSink();
    const skipped: boolean[] = [];
    const driver = new EngineDriver(engine, new ArrayFrameSource(pcm), sink, { onStep: (r) => skipped.push(r.decodeSkipped) }, 1, { skipDecodeBacklog: 2 * FRAME_SAMPLES });
    await driver.run();
    // Backlog after taking frame t: (5 - t) frames. Catching up from t = 0 (backlog >= 2 frames;
    // t = 0 has no LM frame to skip) until the backlog is below one frame (t = 5).
    expect(skipped).toEqual([false, true, true, true, true, false]);
    expect(codec.encodes).toBe(6); // every input frame was encoded: nothing dropped
    expect(sink.frames.length).toBe(6);
    expect(engine.metrics.snapshot().skippedDecodes).toBe(4);

    const engine2 = new Engine({ codec: new EchoCodec(1), lm: new DelayLm() }, null, { userCodebooks: 1, depQ: 1 });
    const seen: boolean[] = [];
    const d2: EngineDriver = new EngineDriver(engine2, new ArrayFrameSource(new Float32Array(4 * FRAME_SAMPLES)), new ArrayFrameSink(), {
      onStep: (r) => {
        seen.push(r.decodeSkipped);
        d2.pressure = r.index === 1; // the page's queue is over budget after step 1 only
      },
    });
    await d2.run();
    expect(seen).toEqual([false, false, true, false]);
  });

  it('tokens.json round trip and validation', async () => {
    const { parseTokensJson, tokensJson } = await import('../../src/engine/tokens_json.ts');
    const text = tokensJson(2, [null, { text: 5, audio: Int32Array.of(1, 2) }]);
    expect(parseTokensJson(text)).toEqual({ dep_q: 2, steps: [null, { text: 5, audio: [1, 2] }] });
    expect(() => parseTokensJson('{"dep_q": 2, "steps": [{"text": 1, "audio": [1]}]}', 't.json')).toThrow(/t.json: step 0/);
    expect(() => parseTokensJson('nope', 't.json')).toThrow(/not JSON/);
  });

  it('parseCondition', async () => {
    const { parseCondition } = await import('../../src/engine/load.ts');
    expect(parseCondition(['description=very_good'])).toEqual({ description: 'very_good' });
    expect(() => parseCondition(['description'])).toThrow(/NAME=VALUE/);
    expect(() => parseCondition(['=x'])).toThrow(/NAME=VALUE/);
  });
});
