import { urlFixtures } from '../../harness/fixtures.ts';
import { QUANT_SETS, type QuantSet, runQuantLmGolden } from '../../golden/lm_quant_golden.ts';
import type { BrowserSuite } from '../protocol.ts';

/** The quantized-checkpoint LM goldens (f32, bf16, q8, MLX q4 / q8) in a module Worker on Chromium's WebGPU. */
const run: BrowserSuite = async (ctx, env) => {
  const read = urlFixtures(env.fixturesUrl);
  for (const set of Object.keys(QUANT_SETS) as QuantSet[]) {
    await env.test(`${set}: greedy LMGen matches the official tokens and logits`, async () => {
      const r = await runQuantLmGolden(ctx, read, set, 'f32');
      console.log(`[lm quant ${set}] ${r.format}: ${r.steps} steps; max |Δ| text logits ${r.maxTextLogitErr.toExponential(2)}, depformer logits ${r.maxDepformerLogitErr.toExponential(2)}`);
    });
  }
};
export default run;
