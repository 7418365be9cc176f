import { urlFixtures } from '../../harness/fixtures.ts';
import { runLmGolden } from '../../golden/lm_golden.ts';
import type { BrowserSuite } from '../protocol.ts';

/** The LM golden (tokens and logits, every step) of both fixture sets, in a module Worker on Chromium's WebGPU. */
const run: BrowserSuite = async (ctx, env) => {
  const read = urlFixtures(env.fixturesUrl);
  await env.test('ref: greedy LMGen matches the official tokens and logits', async () => {
    await runLmGolden(ctx, read, 'ref');
  });
  await env.test('ref2b: conditioned greedy LMGen matches the official tokens and logits', async () => {
    await runLmGolden(ctx, read, 'ref2b');
  });
};
export default run;
