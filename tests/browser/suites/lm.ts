import { urlFixtures } from '../../harness/fixtures.ts';
import { runLmGolden } from '../../golden/lm_golden.ts';
import type { BrowserSuite } from '../protocol.ts';

/** The LM golden (tokens and logits, every step) of both fixture sets, in a module Worker on Chromium's WebGPU. */
const run: BrowserSuite = async (ctx, env) => {
  const read = urlFixtures(env.fixturesUrl);
  await env.test('ref: greedy LMGen matches the official tokens and logits', async () => {
    const r = await runLmGolden(ctx, read, 'ref');
    console.log(`[lm golden ref] ${r.steps} steps; max |Δ| transformer_out ${r.maxTransformerOutErr.toExponential(2)}, text logits ${r.maxTextLogitErr.toExponential(2)}, depformer logits ${r.maxDepformerLogitErr.toExponential(2)}`);
  });
  await env.test('ref2b: conditioned greedy LMGen matches the official tokens and logits', async () => {
    const r = await runLmGolden(ctx, read, 'ref2b');
    console.log(`[lm golden ref2b] ${r.steps} steps; max |Δ| transformer_out ${r.maxTransformerOutErr.toExponential(2)}, text logits ${r.maxTextLogitErr.toExponential(2)}, depformer logits ${r.maxDepformerLogitErr.toExponential(2)}`);
  });
};
export default run;
