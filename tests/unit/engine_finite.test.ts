// Finiteness checks of Engine.step: bad input samples are zeroed before the codec, non-finite
// logits are flagged through the GPU backend's token readback (finite_check kernel), a decoded
// frame with bad samples is replaced by silence; each is a named fault and counted in metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECK_BITS, Engine, type GpuLoop, type LmFrame, type LoopCodec, type LoopLm } from '../../src/engine/engine.ts';
import { FRAME_SAMPLES } from '../../src/engine/metrics.ts';
import type { GpuContext, Recorder, Tensor } from '../../src/gpu/index.ts';
import { finiteCheck } from '../../src/kernels/finite.ts';
import { sample } from '../../src/kernels/sample.ts';
import { nodeContext } from '../harness/node_gpu.ts';

/** Encodes a frame to the sum of its samples (so a NaN would show), decodes to a constant or to what `decodeAs` says. */
class SumCodec implements LoopCodec {
  seen: Float32Array[] = [];
  decodeAs: ((step: number) => Float32Array) | null = null;
  private decodes = 0;
  async encode(pcm: Float32Array): Promise<Int32Array> {
    this.seen.push(pcm.slice());
    return new Int32Array([Math.round(pcm.reduce((a, b) => a + b, 0))]);
  }
  async decode(_codes: Int32Array, frames: number): Promise<Float32Array> {
    const i = this.decodes++;
    return this.decodeAs ? this.decodeAs(i) : new Float32Array(frames * FRAME_SAMPLES).fill(0.25);
  }
  reset(): void {}
}
class EchoLm implements LoopLm {
  async step(user: Int32Array): Promise<LmFrame | null> {
    return { text: 7, audio: user.slice() };
  }
  reset(): void {}
}

describe('Engine finiteness (host backend)', () => {
  it('zeroes NaN / infinite / absurd input samples before encode, names and counts them; the caller array is untouched', async () => {
    const codec = new SumCodec();
    const engine = new Engine({ codec, lm: new EchoLm() }, null, { userCodebooks: 1, depQ: 1 });
    const x = new Float32Array(FRAME_SAMPLES).fill(0.5);
    x[3] = NaN;
    x[10] = Infinity;
    x[11] = -1e30;
    const r = await engine.step(x);
    expect(Number.isNaN(x[3])).toBe(true); // not modified
    expect(codec.seen[0].every((v) => Number.isFinite(v))).toBe(true);
    expect(codec.seen[0][3]).toBe(0);
    expect(codec.seen[0][4]).toBe(0.5);
    expect(r.faults).toEqual([{ kind: 'input', samples: 3, message: 'step 0: 3 input sample(s) NaN, infinite or beyond ±16 (first: sample 3 = NaN) replaced by 0' }]);
    const clean = await engine.step(new Float32Array(FRAME_SAMPLES).fill(0.1));
    expect(clean.faults).toEqual([]);
    expect(engine.metrics.snapshot().nonFinite).toEqual({ inputFrames: 1, inputSamples: 3, textLogitSteps: 0, audioLogitSteps: 0, outputFrames: 0, outputSamples: 0 });
  });

  it('a decoded frame with NaN is replaced by silence, named and counted', async () => {
    const codec = new SumCodec();
    codec.decodeAs = (i) => {
      const y = new Float32Array(FRAME_SAMPLES).fill(0.2);
      if (i === 1) y.fill(NaN, 100, 105);
      return y;
    };
    const engine = new Engine({ codec, lm: new EchoLm() }, null, { userCodebooks: 1, depQ: 1 });
    const r0 = await engine.step(new Float32Array(FRAME_SAMPLES));
    const r1 = await engine.step(new Float32Array(FRAME_SAMPLES));
    expect(r0.pcm[0]).toBeCloseTo(0.2, 6);
    expect(r1.pcm.every((v) => v === 0)).toBe(true);
    expect(r1.faults.map((f) => [f.kind, f.samples])).toEqual([['output', 5]]);
    expect(r1.faults[0].message).toMatch(/^step 1: Mimi decode returned 5 sample\(s\) NaN.*first: sample 100 = NaN.*replaced by silence/);
    expect(engine.metrics.snapshot().nonFinite).toMatchObject({ outputFrames: 1, outputSamples: 5 });
  });
});

/**
 * A recording-level loop on the real device: "encode" copies the first codebooks' worth of PCM
 * bits, the "LM" copies constant tokens, its "logits" are two tensors the test fills (NaN on
 * chosen steps), "decode" copies a PCM tensor the test fills.
 */
describe('Engine finiteness (GPU backend: the check word rides in the token readback)', () => {
  let ctx: GpuContext;
  let text: Tensor;
  let audio: Tensor;
  let tok: Tensor;
  let pcm: Tensor;
  beforeAll(async () => {
    ctx = await nodeContext();
    text = ctx.tensor([1, 300], 'f32', 'fake.text_logits');
    audio = ctx.tensor([1, 70], 'f32', 'fake.audio_logits');
    tok = ctx.upload(new Int32Array([5, 11, 12]), [3], 'i32', 'fake.tokens');
    pcm = ctx.tensor([FRAME_SAMPLES], 'f32', 'fake.pcm');
  });
  afterAll(() => {
    for (const t of [text, audio, tok, pcm]) t?.destroy();
  });

  it('NaN text or audio logits are reported per step by name; clean steps report nothing', async () => {
    const loop: GpuLoop = {
      ctx,
      codebooks: 2,
      depQ: 2,
      prepare: async () => {},
      recordEncode: (rec: Recorder, _p: Tensor, codes: Tensor) => rec.clear(codes),
      recordLmStep: (rec: Recorder, _c: Tensor, out: Tensor) => {
        rec.copy(tok, out, 12);
        return true;
      },
      recordDecode: (rec: Recorder, _a: Tensor, out: Tensor) => rec.copy(pcm, out),
      recordChecks: (rec: Recorder, flags: Tensor) => {
        finiteCheck(rec, text, flags, CHECK_BITS.textLogits);
        finiteCheck(rec, audio, flags, CHECK_BITS.audioLogits);
      },
      reset: () => {},
    };
    const engine = new Engine({ gpu: loop }, null, { depQ: 2 });
    const setLogits = (textBad: boolean, audioBad: boolean) => {
      const t = new Float32Array(300).fill(1);
      if (textBad) t[299] = NaN;
      const a = new Float32Array(70).fill(-2);
      if (audioBad) a[0] = -Infinity;
      ctx.write(text, t);
      ctx.write(audio, a);
    };
    ctx.write(pcm, new Float32Array(FRAME_SAMPLES).fill(0.125));
    const kinds = [];
    for (const [tb, ab] of [[false, false], [true, false], [false, true], [true, true], [false, false]] as const) {
      setLogits(tb, ab);
      const r = await engine.step(new Float32Array(FRAME_SAMPLES));
      expect(r.frame).toEqual({ text: 5, audio: new Int32Array([11, 12]) }); // the check word is not a token
      expect(r.pcm[7]).toBe(0.125);
      kinds.push(r.faults.map((f) => f.kind));
    }
    expect(kinds).toEqual([[], ['text_logits'], ['audio_logits'], ['text_logits', 'audio_logits'], []]);
    expect(engine.metrics.snapshot().nonFinite).toMatchObject({ textLogitSteps: 2, audioLogitSteps: 2 });
    // A decoded frame with an infinity becomes silence on the GPU path too.
    const bad = new Float32Array(FRAME_SAMPLES).fill(0.125);
    bad[1919] = Infinity;
    ctx.write(pcm, bad);
    setLogits(false, false);
    const r = await engine.step(new Float32Array(FRAME_SAMPLES));
    expect(r.pcm.every((v) => v === 0)).toBe(true);
    expect(r.faults.map((f) => f.kind)).toEqual(['output']);
  });

  it('a loop that checks inside its LM step (checksInLmStep: the sampling kernel ORs the bits) reports the same faults', async () => {
    const sampled = ctx.tensor([3], 'i32', 'fake.sampled');
    const loop: GpuLoop = {
      ctx,
      codebooks: 2,
      depQ: 2,
      prepare: async () => {},
      recordEncode: (rec: Recorder, _p: Tensor, codes: Tensor) => rec.clear(codes),
      checksInLmStep: true,
      recordLmStep: (rec: Recorder, _c: Tensor, out: Tensor, flags?: Tensor) => {
        expect(flags).toBeDefined();
        sample(rec, text, sampled, { check: { flags: flags!, bit: CHECK_BITS.textLogits } });
        sample(rec, audio, sampled, { outOffset: 1, check: { flags: flags!, bit: CHECK_BITS.audioLogits } });
        rec.copy(tok, out, 12);
        return true;
      },
      recordDecode: (rec: Recorder, _a: Tensor, out: Tensor) => rec.copy(pcm, out),
      reset: () => {},
    };
    const engine = new Engine({ gpu: loop }, null, { depQ: 2 });
    ctx.write(pcm, new Float32Array(FRAME_SAMPLES).fill(0.125));
    const kinds = [];
    for (const [tb, ab] of [[false, false], [true, false], [false, true], [true, true], [false, false]] as const) {
      const t = new Float32Array(300).fill(1);
      if (tb) t[150] = Infinity;
      const a = new Float32Array(70).fill(-2);
      if (ab) a[69] = NaN;
      ctx.write(text, t);
      ctx.write(audio, a);
      const r = await engine.step(new Float32Array(FRAME_SAMPLES));
      expect(r.frame).toEqual({ text: 5, audio: new Int32Array([11, 12]) });
      kinds.push(r.faults.map((f) => f.kind));
    }
    expect(kinds).toEqual([[], ['text_logits'], ['audio_logits'], ['text_logits', 'audio_logits'], []]);
    expect(engine.metrics.snapshot().nonFinite).toMatchObject({ textLogitSteps: 2, audioLogitSteps: 2 });
    sampled.destroy();
  });
});
