/**
 * Our side of the peer comparison: MimiModel (src/models/mimi.ts) on this Worker's WebGPU device,
 * loaded from the golden set's `mimi_tiny.safetensors` + `mimi_tiny_config.json` (the weights the
 * ONNX peer was exported with), non-streaming encodeAll / decodeAll.
 */
import { GpuContext } from '../../src/gpu/index.ts';
import { MimiModel } from '../../src/models/mimi.ts';
import { parseMimiConfig } from '../../src/models/mimi_config.ts';
import { SafetensorsFile } from '../../src/weights/safetensors.ts';
import { VarBuilder } from '../../src/weights/var_builder.ts';
import { type MimiRunner, fetchBytes } from './runner.ts';

export async function createOursRunner(opts: { fixturesUrl: string; set: string; onAdapter(a: unknown): void }): Promise<MimiRunner> {
  const base = `${opts.fixturesUrl}/${opts.set}`;
  const configJson = JSON.parse(new TextDecoder().decode(await fetchBytes(`${base}/mimi_tiny_config.json`)));
  const weights = await fetchBytes(`${base}/mimi_tiny.safetensors`);
  const t0 = performance.now();
  const ctx = await GpuContext.create();
  opts.onAdapter(ctx.adapter);
  const config = parseMimiConfig(configJson, `${opts.set}/mimi_tiny_config.json`);
  const file = SafetensorsFile.parse(weights, `${opts.set}/mimi_tiny.safetensors`);
  const model = await MimiModel.load(ctx, config, VarBuilder.fromSafetensors(ctx, [file]));
  const loadMs = performance.now() - t0;
  return {
    loadMs,
    detail: `SolaceLive WGSL, ${ctx.adapter.vendor}/${ctx.adapter.architecture}, features ${ctx.adapter.features.join(' ')}`,
    numCodebooks: model.numCodebooks,
    encode: (pcm) => model.encodeAll(pcm),
    decode: (codes, frames) => model.decodeAll(codes, frames),
    destroy() {
      model.destroy();
      ctx.destroy();
    },
  };
}
