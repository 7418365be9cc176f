import { expect, it } from 'vitest';
import { nodeFixtures } from '../harness/fixtures.ts';
import { nodeContext } from '../harness/node_gpu.ts';
import { STT_ATOL, runSttGolden } from './stt_golden.ts';

// The official STT procedure (run_inference.py, model_type "stt") on the tiny STT model + ref Mimi:
// codes, every text token, the dropped first step, extra-head probabilities and all text logits.
it('STT golden (Node WebGPU): codes, tokens, extra heads and logits match the official procedure', async () => {
  const r = await runSttGolden(await nodeContext(), nodeFixtures());
  console.log(`[stt golden] ${r.frames} frames, ${r.steps} LMGen steps; max |Δ| text logits ${r.maxTextLogitErr.toExponential(2)}, extra heads ${r.maxExtraHeadErr.toExponential(2)}`);
  expect(r.frames).toBe(54);
  expect(r.steps).toBe(55);
  expect(r.maxTextLogitErr).toBeLessThanOrEqual(STT_ATOL);
  expect(r.maxExtraHeadErr).toBeLessThanOrEqual(STT_ATOL);
}, 600_000);
