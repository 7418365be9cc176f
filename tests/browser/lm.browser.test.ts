import { expect, it } from 'vitest';
import { failureSummary, runBrowserSuite } from '../harness/browser.ts';

// The LM golden check inside a module Worker of headless Chromium (WebGPU on SwiftShader).
it('LM golden passes in a Chromium module Worker (WebGPU)', async () => {
  const run = await runBrowserSuite('lm');
  for (const line of run.console.filter((l) => l.includes('[lm golden'))) console.log(`chromium: ${line}`);
  expect(failureSummary(run)).toBe('');
  expect(run.results.length).toBe(2);
}, 900_000);
