import type { GpuContext } from '../../src/gpu/index.ts';
import { createNodeGpuContext } from '../../src/gpu/node.ts';

let shared: Promise<GpuContext> | null = null;

/** One Dawn device per test process (SwiftShader by default). */
export function nodeContext(): Promise<GpuContext> {
  shared ??= createNodeGpuContext();
  return shared;
}
