import { MimiModel } from '../../../src/models/mimi.ts';
import { assertClose, assertEqualInts } from '../../../src/selftest/check.ts';
import { fixtureF32, fixtureI32, urlFixtures } from '../../harness/fixtures.ts';
import { loadMimiFixture } from '../../golden/mimi_helpers.ts';
import type { BrowserSuite } from '../protocol.ts';

/**
 * MimiModel in a Chromium module Worker (WebGPU): streaming codes of the tiny golden model equal
 * `mimi/st_codes` exactly (one 1920-sample call per frame), streaming decode matches
 * `st_decoded_audio` within 5e-4, and the non-streaming clip gives `ns_codes`.
 */
const run: BrowserSuite = async (ctx, env) => {
  const read = urlFixtures(env.fixturesUrl);
  for (const set of ['ref']) {
    const fx = await loadMimiFixture(read, set);
    const model = await MimiModel.load(ctx, fx.config, fx.vb(ctx));
    const pcm = await fixtureF32(read, `${set}/mimi/input_pcm_f32.f32.bin`);
    const stCodes = await fixtureI32(read, `${set}/mimi/st_codes.i32.bin`);
    const K = model.numCodebooks;
    const F = pcm.length / model.frameSize;
    try {
      await env.test(`${set}: streaming encode codes equal st_codes`, async () => {
        model.reset();
        const codes = new Int32Array(K * F);
        for (let t = 0; t < F; t++) {
          const c = await model.encode(pcm.subarray(t * 1920, (t + 1) * 1920));
          for (let k = 0; k < K; k++) codes[k * F + t] = c[k];
        }
        assertEqualInts(`${set} st codes`, codes, stCodes, [K, F]);
      });
      await env.test(`${set}: streaming decode matches st_decoded_audio (5e-4)`, async () => {
        const want = await fixtureF32(read, `${set}/mimi/st_decoded_audio.f32.bin`);
        const audio = new Float32Array(F * 1920);
        for (let t = 0; t < F; t++) {
          audio.set(await model.decode(Int32Array.from({ length: K }, (_, k) => stCodes[k * F + t]), 1), t * 1920);
        }
        assertClose(`${set} st audio`, audio, want, { atol: 5e-4 });
      });
      await env.test(`${set}: encodeAll codes equal ns_codes`, async () => {
        assertEqualInts(`${set} ns codes`, await model.encodeAll(pcm), await fixtureI32(read, `${set}/mimi/ns_codes.i32.bin`), [K, F]);
      });
    } finally {
      model.destroy();
    }
  }
};
export default run;
