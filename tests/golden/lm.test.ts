import { describe, expect, it } from 'vitest';
import { nodeFixtures } from '../harness/fixtures.ts';
import { nodeContext } from '../harness/node_gpu.ts';
import { LM_SETS, type LmSet, LOGIT_ATOL, runLmGolden } from './lm_golden.ts';

// Greedy LMGen on the tiny LMs vs the official PyTorch outputs, every step: main input tokens,
// transformer_out, text logits, depformer inputs and logits, sampled tokens, delay-aligned outputs.
describe('Moshi LM golden (Node WebGPU)', () => {
  for (const set of Object.keys(LM_SETS) as LmSet[]) {
    it(`${set}: every step matches the official LMGen`, async () => {
      const r = await runLmGolden(await nodeContext(), nodeFixtures(), set);
      console.log(`[lm golden ${set}] ${r.steps} steps; max |Δ| transformer_out ${r.maxTransformerOutErr.toExponential(2)}, text logits ${r.maxTextLogitErr.toExponential(2)}, depformer logits ${r.maxDepformerLogitErr.toExponential(2)}`);
      expect(r.maxTextLogitErr).toBeLessThanOrEqual(LOGIT_ATOL);
      expect(r.maxDepformerLogitErr).toBeLessThanOrEqual(LOGIT_ATOL);
    }, 600_000);
  }
});
