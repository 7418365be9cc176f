// Cancel and one-load-at-a-time on the GPU (tiny models, the Node GPU adapter): a load cancelled
// mid-upload leaves nothing on the GPU, and a second load through the LoadSlot frees the first
// engine before uploading, so GPU memory after N loads equals that after one.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LoadedEngine, loadEngine } from '../../src/engine/load.ts';
import { LoadSlot } from '../../src/engine/load_slot.ts';
import type { GpuContext } from '../../src/gpu/index.ts';
import { createNodeGpuContext } from '../../src/gpu/node.ts';
import type { ModelFiles } from '../../src/weights/sources.ts';

const DIR = join(process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures'), 'ref');
const json = (f: string) => JSON.parse(readFileSync(join(DIR, f), 'utf8'));
const files = (): ModelFiles => ({
  mimiConfig: json('mimi_tiny_config.json'),
  mimiWeights: new Uint8Array(readFileSync(join(DIR, 'mimi_tiny.safetensors'))),
  lmConfig: json('moshi_tiny_config.json'),
  // A Blob, as downloads and picked files give it: the LM is uploaded tensor by tensor.
  lmWeights: new Blob([readFileSync(join(DIR, 'moshi_tiny.safetensors'))]),
  tokenizer: null,
  names: { lmWeights: 'moshi_tiny.safetensors', mimiWeights: 'mimi_tiny.safetensors' },
  origins: {},
});
const sampling = { temp: 0, tempText: 0, topK: 250, topKText: 25, seed: 0 };

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpuContext();
});
afterAll(() => ctx?.destroy());

it('a load cancelled after Mimi is on the GPU rejects with AbortError and frees everything it uploaded', async () => {
  const base = ctx.liveBytes;
  const ctrl = new AbortController();
  const stages: string[] = [];
  const p = loadEngine(ctx, files(), {
    sampling,
    condition: null,
    signal: ctrl.signal,
    onStage: (m) => {
      stages.push(m);
      if (m === 'uploading the LM') ctrl.abort(); // Mimi is uploaded, the LM about to be
    },
  });
  await expect(p).rejects.toMatchObject({ name: 'AbortError' });
  expect(stages).toContain('uploading the LM');
  expect(stages).not.toContain('reading the tokenizer');
  expect(ctx.liveBytes).toBe(base);
  // Cancelled before it starts: nothing happens at all.
  const pre = new AbortController();
  pre.abort();
  await expect(loadEngine(ctx, files(), { sampling, condition: null, signal: pre.signal })).rejects.toMatchObject({ name: 'AbortError' });
  expect(ctx.liveBytes).toBe(base);
}, 300_000);

it('loads through a LoadSlot dispose the previous engine first: GPU memory stays that of one engine', async () => {
  const base = ctx.liveBytes;
  const slot = new LoadSlot<LoadedEngine>();
  const load = () => slot.run((signal) => loadEngine(ctx, files(), { sampling, condition: null, signal }));
  await load();
  const one = ctx.liveBytes;
  expect(one).toBeGreaterThan(base);
  // The models (here ~15 MB) and the engine's own step buffers are freed before the next upload.
  await load();
  expect(ctx.liveBytes).toBe(one);
  // Two at once: the first is cancelled, only the second stays.
  const [a, b] = await Promise.allSettled([load(), load()]);
  expect(a.status).toBe('rejected');
  expect(b.status).toBe('fulfilled');
  expect(ctx.liveBytes).toBe(one);
  await slot.dispose();
  expect(ctx.liveBytes).toBe(base);
}, 300_000);
