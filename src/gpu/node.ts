/**
 * Node host: WebGPU through the `webgpu` package (Dawn). Import only from Node code (CLI, tests,
 * benchmarks): it loads a native addon.
 */
import { GpuContext, type GpuContextOptions } from './context.ts';
import { WebGPUUnavailableError } from './errors.ts';

/** Default Vulkan driver: the SwiftShader ICD that Debian's chromium package ships. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

let cached: GPU | null = null;

/**
 * Returns Node's `GPU` object. `VK_ICD_FILENAMES` must name a Vulkan driver before Dawn loads;
 * when unset it defaults to SwiftShader (if present). Throws WebGPUUnavailableError naming
 * what to install when the package or the Vulkan loader is missing.
 */
export async function nodeGpu(): Promise<GPU> {
  if (cached) return cached;
  const fs = await import('node:fs');
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && fs.existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  let mod: { create: (opts: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (e) {
    throw new WebGPUUnavailableError(`the 'webgpu' npm package could not be loaded (${(e as Error).message}); run npm ci`);
  }
  Object.assign(globalThis, mod.globals);
  cached = mod.create([]);
  return cached;
}

/** A GpuContext on Node's Dawn. Same errors as GpuContext.create, plus a hint about Vulkan drivers. */
export async function createNodeGpuContext(options: Omit<GpuContextOptions, 'gpu' | 'host'> = {}): Promise<GpuContext> {
  const gpu = await nodeGpu();
  try {
    return await GpuContext.create({ ...options, gpu, host: 'node' });
  } catch (e) {
    if (e instanceof WebGPUUnavailableError) {
      throw new WebGPUUnavailableError(
        `${e.message} (Node: install Debian's libvulkan1 and chromium for SwiftShader at ${SWIFTSHADER_ICD}, or set VK_ICD_FILENAMES to another Vulkan ICD JSON)`,
      );
    }
    throw e;
  }
}
