import { existsSync, readFileSync } from 'node:fs';
import { configDefaults, defineConfig } from 'vitest/config';

// Dawn reads the Vulkan driver list when it loads: set it in the process environment now,
// before any test worker imports `webgpu` (vitest's test.env comes too late).
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) {
  process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
}
process.env.XDG_RUNTIME_DIR ??= '/tmp';

// The second software adapter: Mesa 25 lavapipe (shader-f16, subgroups of 8), unpacked by
// scripts/ensure_lavapipe.mjs (run by `npm test` through ensure_chromium.mjs) or named by
// LAVAPIPE_ICD. Project `lavapipe` runs the kernel suites and goldens again on it; its forked test
// processes get VK_ICD_FILENAMES from the project's env before they load Dawn.
const LAVAPIPE_DIR = new URL('./.cache/lavapipe/', import.meta.url).pathname;
const LAVAPIPE_ICD = process.env.LAVAPIPE_ICD || `${LAVAPIPE_DIR}lvp_icd.json`;
const lavapipeMissing = existsSync(LAVAPIPE_ICD)
  ? ''
  : existsSync(`${LAVAPIPE_DIR}FAILED.txt`)
    ? `scripts/ensure_lavapipe.mjs failed: ${readFileSync(`${LAVAPIPE_DIR}FAILED.txt`, 'utf8').trim()}`
    : `no ${LAVAPIPE_ICD}: run node scripts/ensure_lavapipe.mjs (as root) or set LAVAPIPE_ICD`;
/** Test files run on both adapters: every kernel case and the model goldens. */
const BOTH_ADAPTERS = ['tests/kernels/kernels.node.test.ts', 'tests/golden/*.test.ts'];

/** Test files that measure real-time speed. */
const REALTIME = ['tests/e2e/browser_loop.test.ts'];
/** The soak (minutes of the live loop): alone too, after the real-time tests. */
const SOAK = ['tests/e2e/soak.test.ts'];

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
      { extends: true, test: { name: 'main', include: ['tests/**/*.test.ts'], exclude: [...configDefaults.exclude, ...REALTIME, ...SOAK], sequence: { groupOrder: 0 } } },
      {
        extends: true,
        test: {
          name: 'lavapipe',
          include: BOTH_ADAPTERS,
          exclude: [...configDefaults.exclude, 'tests/golden/checkpoint_layout.test.ts'],
          env: lavapipeMissing
            ? { SOLACE_NODE_ADAPTER: 'lavapipe', SOLACE_NODE_ADAPTER_MISSING: lavapipeMissing }
            : { SOLACE_NODE_ADAPTER: 'lavapipe', VK_ICD_FILENAMES: LAVAPIPE_ICD },
          sequence: { groupOrder: 0 },
        },
      },
      { extends: true, test: { name: 'realtime', include: REALTIME, sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'soak', include: SOAK, sequence: { groupOrder: 2 } } },
    ],
  },
});
