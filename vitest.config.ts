import { existsSync } from 'node:fs';
import { configDefaults, defineConfig } from 'vitest/config';

// Dawn reads the Vulkan driver list when it loads: set it in the process environment now,
// before any test worker imports `webgpu` (vitest's test.env comes too late).
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) {
  process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
}
process.env.XDG_RUNTIME_DIR ??= '/tmp';

/** Test files that measure real-time speed. */
const REALTIME = ['tests/e2e/browser_loop.test.ts', 'tests/e2e/soak.test.ts'];

export default defineConfig({
  test: {
    pool: 'forks',
    // 2-core machines: software GPU adapters use every core; run two files at a time at most.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default'],
    // The live-loop test measures real-time behaviour (steps per second on a CPU adapter), so it
    // runs alone, after every other file: CPU-bound suites beside it would slow the loop down.
    projects: [
      { extends: true, test: { name: 'main', include: ['tests/**/*.test.ts'], exclude: [...configDefaults.exclude, ...REALTIME], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'realtime', include: REALTIME, sequence: { groupOrder: 1 } } },
    ],
  },
});
