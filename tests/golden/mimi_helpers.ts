/** Shared helpers of the Mimi golden tests (Node and the Chromium Worker suite). */
import { type FixtureReader, fixtureJson } from '../harness/fixtures.ts';
import { SafetensorsFile } from '../../src/weights/safetensors.ts';
import { VarBuilder } from '../../src/weights/var_builder.ts';
import type { GpuContext } from '../../src/gpu/index.ts';
import { type MimiConfig, parseMimiConfig } from '../../src/models/mimi_config.ts';

/** [C, T] row-major -> [T, C] row-major. */
export function toTimeMajor(a: ArrayLike<number>, c: number, t: number): Float32Array {
  const out = new Float32Array(c * t);
  for (let i = 0; i < c; i++) for (let j = 0; j < t; j++) out[j * c + i] = a[i * t + j];
  return out;
}

export interface MimiFixture {
  set: string;
  config: MimiConfig;
  file: SafetensorsFile;
  vb(ctx: GpuContext): VarBuilder;
}

export async function loadMimiFixture(read: FixtureReader, set: string): Promise<MimiFixture> {
  const config = parseMimiConfig(await fixtureJson(read, `${set}/mimi_tiny_config.json`), `${set}/mimi_tiny_config.json`);
  const file = SafetensorsFile.parse(await read(`${set}/mimi_tiny.safetensors`), `${set}/mimi_tiny.safetensors`);
  return { set, config, file, vb: (ctx) => VarBuilder.fromSafetensors(ctx, [file]) };
}
