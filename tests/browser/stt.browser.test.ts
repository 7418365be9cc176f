import { expect, it } from 'vitest';
import { failureSummary, runBrowserSuite } from '../harness/browser.ts';

// The STT golden inside a module Worker of headless Chromium (WebGPU on SwiftShader).
it('STT golden passes in a Chromium module Worker (WebGPU)', async () => {
  const run = await runBrowserSuite('stt');
  for (const line of run.console.filter((l) => l.includes('[stt golden'))) console.log(`chromium: ${line}`);
  expect(failureSummary(run)).toBe('');
  expect(run.results.length).toBe(1);
  expect(run.console.some((l) => l.includes('[stt golden] 54 frames, 55 LMGen steps'))).toBe(true);
}, 900_000);
