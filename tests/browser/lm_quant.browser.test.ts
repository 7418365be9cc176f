import { expect, it } from 'vitest';
import { failureSummary, runBrowserSuite } from '../harness/browser.ts';
import { QUANT_SETS } from '../golden/lm_quant_golden.ts';

// The quantized-checkpoint LM goldens inside a module Worker of headless Chromium (WebGPU on SwiftShader).
it('quantized LM goldens pass in a Chromium module Worker (WebGPU)', async () => {
  const run = await runBrowserSuite('lm_quant');
  for (const line of run.console.filter((l) => l.includes('[lm quant'))) console.log(`chromium: ${line}`);
  expect(failureSummary(run)).toBe('');
  expect(run.results.length).toBe(Object.keys(QUANT_SETS).length);
}, 900_000);
