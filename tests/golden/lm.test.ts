import { describe, expect, it } from 'vitest';
import { nodeFixtures } from '../harness/fixtures.ts';
import { NODE_ADAPTER, NODE_ADAPTER_MISSING, nodeContext } from '../harness/node_gpu.ts';
import { KERNEL_PATHS, NODE_KERNEL_PATHS } from './kernel_paths.ts';
import { LM_SETS, type LmSet, LOGIT_ATOL, runLmGolden } from './lm_golden.ts';

// Greedy LMGen on the tiny LMs vs the official PyTorch outputs, every step: main input tokens,
// transformer_out, text logits, depformer inputs and logits, sampled tokens, delay-aligned outputs.
// Once per kernel path of this adapter (NODE_KERNEL_PATHS: the device's default = subgroup matvec
// where supported; subgroup matvec forced off; flash-decoding forced), each checked to have run.
describe.skipIf(NODE_ADAPTER_MISSING)(`Moshi LM golden (Node WebGPU, ${NODE_ADAPTER})`, () => {
  for (const path of NODE_KERNEL_PATHS[NODE_ADAPTER]) {
    for (const set of Object.keys(LM_SETS) as LmSet[]) {
      it(`${set}, ${KERNEL_PATHS[path].title}: every step matches the official LMGen`, async () => {
        const r = await runLmGolden(await nodeContext(), nodeFixtures(), set, Infinity, { path });
        console.log(`[lm golden ${set} ${path} ${NODE_ADAPTER}] ${r.steps} steps; max |Δ| transformer_out ${r.maxTransformerOutErr.toExponential(2)}, text logits ${r.maxTextLogitErr.toExponential(2)}, depformer logits ${r.maxDepformerLogitErr.toExponential(2)}; ${r.kernels}`);
        expect(r.maxTextLogitErr).toBeLessThanOrEqual(LOGIT_ATOL);
        expect(r.maxDepformerLogitErr).toBeLessThanOrEqual(LOGIT_ATOL);
      }, 600_000);
    }
  }
});
