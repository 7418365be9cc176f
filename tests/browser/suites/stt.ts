import { urlFixtures } from '../../harness/fixtures.ts';
import { runSttGolden } from '../../golden/stt_golden.ts';
import type { BrowserSuite } from '../protocol.ts';

/** The Kyutai STT golden (official run_inference.py procedure, tiny STT model + ref Mimi) in a module Worker on Chromium's WebGPU. */
const run: BrowserSuite = async (ctx, env) => {
  const read = urlFixtures(env.fixturesUrl);
  await env.test('STT procedure: codes, tokens, extra heads and logits match the official outputs', async () => {
    const r = await runSttGolden(ctx, read);
    console.log(`[stt golden] ${r.frames} frames, ${r.steps} LMGen steps; max |Δ| text logits ${r.maxTextLogitErr.toExponential(2)}, extra heads ${r.maxExtraHeadErr.toExponential(2)}`);
  });
};
export default run;
