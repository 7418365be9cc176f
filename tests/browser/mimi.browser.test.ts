import { expect, it } from 'vitest';
import { failureSummary, runBrowserSuite } from '../harness/browser.ts';

// MimiModel (tiny golden weights) inside a Chromium module Worker on WebGPU.
it('Mimi streaming codes and audio match the goldens in a Chromium module Worker', async () => {
  const run = await runBrowserSuite('mimi');
  expect(failureSummary(run)).toBe('');
  expect(run.results.map((r) => r.name)).toEqual([
    'ref: streaming encode codes equal st_codes',
    'ref: streaming decode matches st_decoded_audio (5e-4)',
    'ref: encodeAll codes equal ns_codes',
  ]);
}, 900_000);
