/**
 * The quantized-checkpoint LM goldens (../shared/fixtures/quant): one tiny 7B-shaped LM in the
 * official f32, bf16, PyTorch q8 and MLX q4 / q8 layouts, each run by the official code on its
 * dequantized weights. Shared by the Node test (tests/golden/lm_quant.test.ts) and the Chromium
 * Worker suite (tests/browser/suites/lm_quant.ts).
 */
import type { GpuContext } from '../../src/gpu/index.ts';
import { LMModel } from '../../src/models/lm.ts';
import { type LMGenTrace, LMGen } from '../../src/models/lm_gen.ts';
import { parseLmConfig } from '../../src/models/lm_config.ts';
import { SafetensorsFile } from '../../src/weights/safetensors.ts';
import { VarBuilder } from '../../src/weights/var_builder.ts';
import { assertClose, assertEqualInts } from '../../src/selftest/check.ts';
import { type FixtureReader, fixtureF32, fixtureI32, fixtureJson } from '../harness/fixtures.ts';
import { type GoldenRunOptions, withKernelPath } from './kernel_paths.ts';

/** Golden directory -> LM file, for each published layout. */
export const QUANT_SETS = {
  f32: 'lm_f32.safetensors',
  bf16: 'model.bf16.safetensors',
  q8: 'model.q8.safetensors',
  mlx_q4: 'model.q4.safetensors',
  mlx_q8: 'model.q8.mlx.safetensors',
} as const;
export type QuantSet = keyof typeof QUANT_SETS;

/** Fixture README: logits within 1e-3 of their scale. */
export const QUANT_LOGIT_TOL = 1e-3;

export interface QuantGoldenResult {
  steps: number;
  format: string;
  maxTextLogitErr: number;
  maxDepformerLogitErr: number;
  /** Bytes of the LM's weights on the GPU. */
  weightBytes: number;
  /** Matvec and attention dispatches of the run, by kernel path (kernel_paths.ts). */
  kernels: string;
}

/**
 * Loads `quant/<file of set>`, runs greedy LMGen over `quant/<set>/user_input_codes` and compares
 * every step with the official outputs: main input tokens and output tokens exactly, transformer
 * output and logits within QUANT_LOGIT_TOL (relative to each array's scale). `kvCache` as
 * LMModel.load (the goldens used an f32 model, so 'f32' is the exact comparison); `load.context`
 * a shorter KV context (≥ the 36 steps: the same results). Throws at the first difference, naming
 * the set, step and array. `opts.path` forces a kernel path for every layer (and fails if it did
 * not run).
 */
export async function runQuantLmGolden(ctx: GpuContext, read: FixtureReader, set: QuantSet, kvCache: 'f32' | 'f16' | 'auto' = 'f32', opts: GoldenRunOptions & { context?: number } = {}): Promise<QuantGoldenResult> {
  const { result, summary } = await withKernelPath(ctx, opts.path ?? 'default', () => runQuantSteps(ctx, read, set, kvCache, { context: opts.context }));
  return { ...result, kernels: summary };
}

async function runQuantSteps(ctx: GpuContext, read: FixtureReader, set: QuantSet, kvCache: 'f32' | 'f16' | 'auto', load: { context?: number }): Promise<Omit<QuantGoldenResult, 'kernels'>> {
  const dir = `quant/${set}`;
  const i32 = (name: string) => fixtureI32(read, `${dir}/${name}.i32.bin`);
  const f32 = (name: string) => fixtureF32(read, `${dir}/${name}.f32.bin`);
  const cfg = parseLmConfig(await fixtureJson(read, 'quant/lm_config.json'), 'quant/lm_config.json');
  const file = `quant/${QUANT_SETS[set]}`;
  const st = SafetensorsFile.parse(await read(file), file);
  const lm = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), cfg, { policy: 'native', kvCache, ...load });
  const user = await i32('user_input_codes');
  const mainIn = await i32('main_input_tokens');
  const outTok = await i32('lmgen_out_tokens');
  const textLogits = await f32('text_logits');
  const tOut = await f32('transformer_out');
  const depLogits = await f32('depformer_logits');
  const K = cfg.nQ + 1;
  const depQ = cfg.depQ;
  const card = cfg.card;
  const V = cfg.textCardOut;
  const nUser = cfg.nQ - depQ;
  const S = user.length / nUser;
  const traces: LMGenTrace[] = [];
  const gen = new LMGen(lm, { temp: 0, tempText: 0, seed: 1, trace: (t) => traces.push(t) });
  const res: Omit<QuantGoldenResult, 'kernels'> = { steps: 0, format: lm.format.name, maxTextLogitErr: 0, maxDepformerLogitErr: 0, weightBytes: 0 };
  try {
    for (let t = 0; t < S; t++) {
      const out = await gen.step(user.subarray(t * nUser, (t + 1) * nUser));
      const tr = traces[t];
      const at = `quant ${set} step ${t}`;
      assertEqualInts(`${at} main_input_tokens`, tr.mainInput, mainIn.subarray(t * K, (t + 1) * K));
      assertClose(`${at} transformer_out`, tr.transformerOut, tOut.subarray(t * cfg.dim, (t + 1) * cfg.dim), { scaleTol: QUANT_LOGIT_TOL });
      const b = assertClose(`${at} text_logits`, tr.textLogits, textLogits.subarray(t * V, (t + 1) * V), { scaleTol: QUANT_LOGIT_TOL });
      const c = assertClose(`${at} depformer_logits`, tr.depformerLogits, depLogits.subarray(t * depQ * card, (t + 1) * depQ * card), { scaleTol: QUANT_LOGIT_TOL, shape: [depQ, card] });
      const want = outTok.subarray(t * (1 + depQ), (t + 1) * (1 + depQ));
      if (want[0] === -1000) {
        if (out !== null) throw new Error(`${at}: LMGen returned tokens, the official step returned None`);
      } else {
        if (out === null) throw new Error(`${at}: LMGen returned null, the official step returned tokens`);
        assertEqualInts(`${at} lmgen_out_tokens`, [out.text, ...out.audio], want);
      }
      res.maxTextLogitErr = Math.max(res.maxTextLogitErr, b.maxAbs);
      res.maxDepformerLogitErr = Math.max(res.maxDepformerLogitErr, c.maxAbs);
      res.steps++;
    }
    res.weightBytes = lm.weightBytes;
  } finally {
    gen.destroy();
    lm.destroy();
  }
  return res;
}
