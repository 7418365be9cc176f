import { expect, it } from 'vitest';
import { failureSummary, runBrowserSuite } from '../harness/browser.ts';

// The SentencePiece detokenizer (wasm library included) in a Chromium module Worker.
it('text tokenizer works in a Chromium module Worker', async () => {
  const run = await runBrowserSuite('tokenizer');
  expect(failureSummary(run)).toBe('');
  expect(run.results.map((r) => r.name)).toEqual(['reads the vocabulary', 'decodes spm_encode ids like server.py', 'unknown id throws TokenizerError']);
}, 300_000);
