import { describe, expect, it } from 'vitest';
import { nodeFixtures } from '../harness/fixtures.ts';
import { NODE_ADAPTER, NODE_ADAPTER_MISSING, nodeContext } from '../harness/node_gpu.ts';
import { KERNEL_PATHS, NODE_KERNEL_PATHS } from './kernel_paths.ts';
import { QUANT_LOGIT_TOL, QUANT_SETS, type QuantSet, runQuantLmGolden } from './lm_quant_golden.ts';

// The official f32, bf16, PyTorch q8 and MLX q4 / q8 checkpoints of one tiny LM: greedy LMGen
// equals the official outputs on each file's dequantized weights at every step. The five formats
// give five different token sequences, so a wrong scale, nibble order or row fails the tokens.
// Once per kernel path of this adapter (kernel_paths.ts NODE_KERNEL_PATHS), each checked to have run.
describe.skipIf(NODE_ADAPTER_MISSING)(`quantized LM checkpoints vs the official code (Node WebGPU, ${NODE_ADAPTER})`, () => {
  for (const path of NODE_KERNEL_PATHS[NODE_ADAPTER]) {
    for (const set of Object.keys(QUANT_SETS) as QuantSet[]) {
      it(`${set}, ${KERNEL_PATHS[path].title}: every step matches the official LMGen (f32 KV cache)`, async () => {
        const r = await runQuantLmGolden(await nodeContext(), nodeFixtures(), set, 'f32', { path });
        console.log(`[lm quant ${set} ${path} ${NODE_ADAPTER}] ${r.format}: ${r.steps} steps, ${(r.weightBytes / 1e6).toFixed(2)} MB of weights; max |Δ| text logits ${r.maxTextLogitErr.toExponential(2)}, depformer logits ${r.maxDepformerLogitErr.toExponential(2)}; ${r.kernels}`);
        expect(r.steps).toBe(36);
      }, 600_000);
    }
  }
  // The default for half and quantized checkpoints: an f16 KV cache (the official model keeps its
  // cache in the model dtype). The goldens were computed with an f32 model: report the logit error
  // it adds, and keep the tokens equal.
  for (const set of ['bf16', 'mlx_q4'] as const) {
    it(`${set}: with the default f16 KV cache the tokens still equal the official ones`, async () => {
      const r = await runQuantLmGolden(await nodeContext(), nodeFixtures(), set, 'auto');
      console.log(`[lm quant ${set}, f16 KV cache] max |Δ| text logits ${r.maxTextLogitErr.toExponential(2)}, depformer logits ${r.maxDepformerLogitErr.toExponential(2)} (tolerance ${QUANT_LOGIT_TOL} of scale)`);
      expect(r.steps).toBe(36);
    }, 600_000);
  }
});
