import type { GpuContext } from '../../src/gpu/index.ts';
import { createNodeGpuContext } from '../../src/gpu/node.ts';

/**
 * The software Vulkan driver this test process runs on: vitest.config.ts runs the kernel suites
 * and goldens once per adapter (projects `main` = SwiftShader and `lavapipe` = Mesa 25 lavapipe),
 * naming it in SOLACE_NODE_ADAPTER and pointing VK_ICD_FILENAMES at its ICD before Dawn loads.
 */
export type NodeAdapterName = 'swiftshader' | 'lavapipe';
export const NODE_ADAPTER: NodeAdapterName = process.env.SOLACE_NODE_ADAPTER === 'lavapipe' ? 'lavapipe' : 'swiftshader';

/**
 * Why this process's adapter is missing (vitest.config.ts sets SOLACE_NODE_ADAPTER_MISSING when
 * scripts/ensure_lavapipe.mjs could not provide lavapipe), or null. Suites skip with it.
 */
export const NODE_ADAPTER_MISSING: string | null = process.env.SOLACE_NODE_ADAPTER_MISSING || null;
if (NODE_ADAPTER_MISSING) console.warn(`[node gpu] ${NODE_ADAPTER} is not available, its tests are skipped: ${NODE_ADAPTER_MISSING}`);

/** What each adapter reports (GPUAdapterInfo), checked so a wrong ICD cannot pass as the other. */
const EXPECT: Record<NodeAdapterName, (a: GpuContext['adapter']) => boolean> = {
  swiftshader: (a) => a.architecture === 'swiftshader',
  lavapipe: (a) => a.vendor === 'mesa' && /llvmpipe/.test(a.description),
};

let shared: Promise<GpuContext> | null = null;

/** One Dawn device per test process, on NODE_ADAPTER; throws if Dawn gave another adapter. */
export function nodeContext(): Promise<GpuContext> {
  shared ??= createNodeGpuContext().then((ctx) => {
    if (!EXPECT[NODE_ADAPTER](ctx.adapter)) {
      throw new Error(`expected the ${NODE_ADAPTER} adapter (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES}), Dawn gave ${ctx.adapter.vendor}/${ctx.adapter.architecture} '${ctx.adapter.description}'`);
    }
    return ctx;
  });
  return shared;
}
