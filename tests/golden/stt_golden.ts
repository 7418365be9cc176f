/**
 * The Kyutai STT golden (../shared/fixtures/stt, README there): a tiny dep_q = 0 LM with 2 extra
 * heads, the Mimi of ../shared/fixtures/ref, the official run_inference.py procedure over
 * ref/mimi/input_pcm_f32. Shared by the Node test (tests/golden/stt.test.ts) and the Chromium
 * Worker suite (tests/browser/suites/stt.ts).
 */
import type { GpuContext } from '../../src/gpu/index.ts';
import { LMModel } from '../../src/models/lm.ts';
import { LMGen } from '../../src/models/lm_gen.ts';
import { parseLmConfig } from '../../src/models/lm_config.ts';
import { MimiModel } from '../../src/models/mimi.ts';
import { transcribe } from '../../src/models/stt.ts';
import { SafetensorsFile } from '../../src/weights/safetensors.ts';
import { VarBuilder } from '../../src/weights/var_builder.ts';
import { assertClose, assertEqualInts } from '../../src/selftest/check.ts';
import { type FixtureReader, fixtureF32, fixtureI32, fixtureJson } from '../harness/fixtures.ts';
import { loadMimiFixture } from './mimi_helpers.ts';

/** Fixture README: extra-head probabilities and logits within 1e-4 absolute; tokens exact. */
export const STT_ATOL = 1e-4;

export interface SttGoldenResult {
  frames: number;
  steps: number;
  maxExtraHeadErr: number;
  maxTextLogitErr: number;
}

/**
 * Runs the procedure (src/models/stt.ts `transcribe`) with greedy LMGen on the fixture and compares
 * codes [54, 8] and text tokens [54] exactly, the dropped first step's token exactly, extra heads
 * [54, 2, 6] and text logits of all 55 steps [55, 100] within STT_ATOL. Throws at the first
 * difference, naming the array and index.
 */
export async function runSttGolden(ctx: GpuContext, read: FixtureReader): Promise<SttGoldenResult> {
  const manifest = await fixtureJson<{ frames: number; stt_config: { audio_delay_seconds: number; audio_silence_prefix_seconds: number } }>(read, 'stt/stt/manifest.json');
  const cfg = parseLmConfig(await fixtureJson(read, 'stt/config.json'), 'stt/config.json');
  if (cfg.stt?.audioDelaySeconds !== manifest.stt_config.audio_delay_seconds) throw new Error(`stt/config.json stt_config parsed as ${JSON.stringify(cfg.stt)}, manifest says ${JSON.stringify(manifest.stt_config)}`);
  const mimiFix = await loadMimiFixture(read, 'ref');
  if (mimiFix.config.num_codebooks !== cfg.nQ) throw new Error(`ref Mimi emits ${mimiFix.config.num_codebooks} codebooks, the STT model reads ${cfg.nQ}`);
  const st = SafetensorsFile.parse(await read('stt/stt_tiny.safetensors'), 'stt/stt_tiny.safetensors');
  const mimi = await MimiModel.load(ctx, mimiFix.config, mimiFix.vb(ctx));
  const lm = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), cfg, { kvCache: 'f32' });
  const logits: Float32Array[] = [];
  const gen = new LMGen(lm, { temp: cfg.lmGen.temp, tempText: cfg.lmGen.tempText, topK: cfg.lmGen.topK, topKText: cfg.lmGen.topKText, seed: 1, trace: (t) => logits.push(t.textLogits) });
  try {
    if (gen.tempText !== 0) throw new Error(`stt/config.json lm_gen_config is not greedy (temp_text ${gen.tempText})`);
    const pcm = await fixtureF32(read, 'ref/mimi/input_pcm_f32.f32.bin');
    const r = await transcribe(mimi, gen, pcm);
    const F = manifest.frames;
    if (r.inputFrames !== F) throw new Error(`stt: ${r.inputFrames} padded frames, the official procedure had ${F}`);
    assertEqualInts('stt codes [F, 8]', r.codes, await fixtureI32(read, 'stt/stt/codes.i32.bin'), [F, cfg.nQ]);
    assertEqualInts('stt dropped_first_step', [r.droppedFirst ?? -1], await fixtureI32(read, 'stt/stt/dropped_first_step.i32.bin'));
    assertEqualInts('stt text_tokens [F]', r.tokens, await fixtureI32(read, 'stt/stt/text_tokens.i32.bin'));
    const V = cfg.textCardOut;
    const allLogits = new Float32Array(logits.length * V);
    logits.forEach((l, i) => allLogits.set(l, i * V));
    const want = await fixtureF32(read, 'stt/stt/text_logits.f32.bin');
    if (logits.length !== want.length / V) throw new Error(`stt: ${logits.length} LMGen steps, the official procedure had ${want.length / V}`);
    const a = assertClose('stt text_logits [F+1, 100]', allLogits, want, { atol: STT_ATOL, shape: [logits.length, V] });
    if (r.numHeads !== cfg.extraHeadsNumHeads || r.headDim !== cfg.extraHeadsDim) throw new Error(`stt: extra heads ${r.numHeads} × ${r.headDim}, config says ${cfg.extraHeadsNumHeads} × ${cfg.extraHeadsDim}`);
    const b = assertClose('stt extra_heads [F, 2, 6]', r.extraHeads, await fixtureF32(read, 'stt/stt/extra_heads.f32.bin'), { atol: STT_ATOL, shape: [F, r.numHeads, r.headDim] });
    return { frames: F, steps: logits.length, maxExtraHeadErr: b.maxAbs, maxTextLogitErr: a.maxAbs };
  } finally {
    gen.destroy();
    lm.destroy();
    mimi.destroy();
  }
}
