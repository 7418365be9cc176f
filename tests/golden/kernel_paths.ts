/**
 * Kernel paths the LM goldens run under (issue 11 item 2, hardware-path goldens): the device's
 * default choice (fused matvecs), the subgroup matvec forced off, flash-decoding forced on, and
 * fusion forced off (the separate norm / linear / add kernels), each forced for
 * every layer through GpuContext.kernelChoice. The tally of dispatch labels proves the path ran:
 * a golden that passed on another path than its name says fails.
 */
import type { GpuContext, KernelChoice } from '../../src/gpu/index.ts';
import { fixedSubgroupSizeOf } from '../../src/kernels/linear.ts';
import { LAYER_BLOCK_STORAGE_BUFFERS } from '../../src/kernels/layer_block.ts';

export type KernelPath = 'default' | 'matvec-reduce' | 'flash-decoding' | 'unfused' | 'matvecs' | 'blocks-wg64';

/** Slots per split when flash-decoding is forced: the tiny LMs' ~36 steps then split into up to 5. */
export const FORCED_SPLIT_SLOTS = 8;

export const KERNEL_PATHS: Record<KernelPath, { title: string; choice: Partial<KernelChoice> }> = {
  default: { title: 'device default kernels (subgroup matvec where the device has a fixed subgroup size)', choice: {} },
  'matvec-reduce': { title: 'subgroup matvec forced off', choice: { subgroupMatvec: 'off' } },
  'flash-decoding': { title: `flash-decoding forced (split every ${FORCED_SPLIT_SLOTS} slots)`, choice: { attentionSplit: 'always', attentionSplitSlots: FORCED_SPLIT_SLOTS } },
  unfused: { title: 'matvec fusion forced off (separate RMSNorm, linear, residual add, gated SiLU)', choice: { fusion: 'off' } },
  matvecs: { title: "layer blocks off (the depformer's four fused matvecs per layer)", choice: { layerBlocks: 'off' } },
  'blocks-wg64': { title: "layer blocks with a hardware adapter's workgroup (64 threads)", choice: { layerBlockThreads: 64 } },
};

/**
 * Paths each Node adapter runs. SwiftShader skips 'matvec-reduce': with subgroups forced off its
 * LM goldens took 20-47 s each (barrier-heavy workgroup reductions on a CPU driver, 2 shared
 * cores) against 1-2 s on lavapipe; the same WGSL runs on lavapipe here, and on SwiftShader in the
 * kernel suites (linear cases with `subgroups: false`). 'unfused' (the kernels a model without
 * RMSNorm or with layer scales takes), 'matvecs' (the depformer without its layer blocks, as on
 * a device with fewer than 9 storage buffers per stage) and 'blocks-wg64' (the layer blocks with
 * the 64-thread workgroup a hardware adapter gets; both software adapters get 4) run on lavapipe.
 * Browser suites run 'default'.
 */
export const NODE_KERNEL_PATHS: Record<'swiftshader' | 'lavapipe', KernelPath[]> = {
  swiftshader: ['default', 'flash-decoding'],
  lavapipe: ['default', 'matvec-reduce', 'flash-decoding', 'unfused', 'matvecs', 'blocks-wg64'],
};

/** Options of the golden runners: the kernel path to force (default: the device's choice). */
export interface GoldenRunOptions {
  path?: KernelPath;
}

/**
 * Runs `body` with `path`'s kernel choice in force on `ctx` and a fresh dispatch tally, restores
 * both afterwards, and checks from the tally that the path really ran; returns body's result and
 * a one-line summary of the matvec and attention dispatches.
 */
export async function withKernelPath<T>(ctx: GpuContext, path: KernelPath, body: () => Promise<T>): Promise<{ result: T; summary: string }> {
  const prevChoice = ctx.kernelChoice;
  const prevTally = ctx.dispatchTally;
  const tally = new Map<string, number>();
  ctx.kernelChoice = { ...prevChoice, ...KERNEL_PATHS[path].choice };
  ctx.dispatchTally = tally;
  let result: T;
  try {
    result = await body();
  } finally {
    ctx.kernelChoice = prevChoice;
    ctx.dispatchTally = prevTally;
  }
  const count = (re: RegExp) => [...tally].reduce((n, [l, c]) => n + (re.test(l) ? c : 0), 0);
  const sg = count(/^linear\.matvec(_quant)?_sg\./);
  const reduce = count(/^linear\.matvec(_quant)?\./);
  const split = count(/^attention\.attend_split(\+write_kv)?$/);
  const combine = count(/^attention\.combine$/);
  const whole = count(/^attention\.attend(\+write_kv)?$/);
  const fused = count(/^linear\.matvec(_quant)?(_sg)?\.[^+]+\+|^attention\.attend(_split)?\+write_kv$/);
  const attendFused = count(/^linear\.matvec(_quant)?(_sg)?\.attend\+/);
  const blocks = count(/^layer_block\.(attend|ffn)\./);
  const summary = `matvec: ${sg} subgroup, ${reduce} workgroup-reduce, ${fused} fused (${attendFused} with the attention); attention: ${whole} whole, ${split} split + ${combine} combine; layer blocks: ${blocks}`;
  const fail = (why: string) => {
    throw new Error(`kernel path '${path}' did not run as named: ${why} (${summary})`);
  };
  const sgSize = fixedSubgroupSizeOf(ctx);
  if (path === 'matvec-reduce') {
    if (sg > 0) fail('subgroup matvec dispatches with the subgroup matvec forced off');
    if (reduce === 0) fail('no workgroup-reduce matvec dispatch');
  } else if (sgSize > 0 && reduce > 0) fail(`workgroup-reduce matvec on a device with fixed subgroup size ${sgSize}`);
  else if (sgSize === 0 && sg > 0) fail('subgroup matvec on a device without a fixed subgroup size');
  if (path === 'flash-decoding' && (split === 0 || combine === 0)) fail('no flash-decoding dispatch');
  if (path === 'unfused' && fused > 0) fail('fused matvec dispatches with fusion forced off');
  if (path !== 'unfused' && fused === 0) fail('no fused matvec dispatch (RMSNorm / residual / gated SiLU)');
  // The LMs' depformers (short caches, RMSNorm, silu gating) run as layer blocks unless fusion or the blocks are off.
  const blocksOn = path !== 'unfused' && path !== 'matvecs' && ctx.device.limits.maxStorageBuffersPerShaderStage >= LAYER_BLOCK_STORAGE_BUFFERS;
  if (blocksOn && blocks === 0) fail('no layer block dispatch (the depformer)');
  if (!blocksOn && blocks > 0) fail('layer block dispatches with the layer blocks off');
  if (path === 'blocks-wg64' && count(/^layer_block\.(attend|ffn)\.[^.]+\.wg64$/) !== blocks) fail('layer blocks without the 64-thread workgroup');
  if (path !== 'flash-decoding' && ctx.adapter.isFallbackAdapter && split > 0) fail('flash-decoding on a fallback adapter by default');
  return { result, summary };
}
