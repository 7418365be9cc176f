import { expect, it } from 'vitest';
import { failureSummary, runBrowserSuite } from '../harness/browser.ts';
import { ALL_SUITES } from '../../src/selftest/suites.ts';

// The whole kernel suite, same cases as Node, inside a module Worker of headless Chromium.
it('kernel suite passes in a Chromium module Worker (WebGPU)', async () => {
  const run = await runBrowserSuite('kernels');
  const expected = ALL_SUITES.reduce((n, s) => n + s.tests.length, 0);
  expect(failureSummary(run)).toBe('');
  expect(run.results.length).toBe(expected);
  expect((run.adapter as { features: string[] }).features).toBeDefined();
}, 900_000);
