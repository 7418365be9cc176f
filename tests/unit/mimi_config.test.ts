import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MIMI_RELEASED_CONFIG, MimiConfigError, mimiDerived, parseMimiConfig } from '../../src/models/mimi_config.ts';

const FIX = resolve(import.meta.dirname, '../../../shared/fixtures');
const readJson = (rel: string) => JSON.parse(readFileSync(resolve(FIX, rel), 'utf8'));

describe('parseMimiConfig', () => {
  it('reads the fixture files ({mimi_config, num_codebooks}) of both golden sets', () => {
    const a = parseMimiConfig(readJson('ref/mimi_tiny_config.json'));
    expect(a.seanet.dimension).toBe(64);
    expect(a.quantizer).toEqual({ dimension: 16, n_q: 8, bins: 64, input_dimension: 64, output_dimension: 64 });
    expect(a.num_codebooks).toBe(8);
    const b = parseMimiConfig(readJson('ref2b/mimi_tiny_config.json'));
    expect(b.num_codebooks).toBe(16);
    expect(b.transformer.num_heads).toBe(5);
    expect(mimiDerived(b)).toEqual({ hopLength: 960, encoderFrameRate: 25, downsampleStride: 2, frameSize: 1920 });
  });

  it('accepts the bare official config; num_codebooks defaults to 8 (get_mimi)', () => {
    const bare = readJson('ref/mimi_tiny_config.json').mimi_config;
    expect(parseMimiConfig(bare).num_codebooks).toBe(8);
    expect(parseMimiConfig({ ...bare, num_codebooks: 3 }).num_codebooks).toBe(3);
  });

  it('the released preset equals the real Mimi of mimi_keys_full.json (32 codebooks in the checkpoint, Moshi uses 8)', () => {
    const keys = readJson('ref/mimi_keys_full.json');
    const cfg = parseMimiConfig({ mimi_config: keys.mimi_config, num_codebooks: 8 });
    expect(cfg).toEqual(MIMI_RELEASED_CONFIG);
    expect(keys.total_codebooks).toBe(32);
    expect(mimiDerived(MIMI_RELEASED_CONFIG).frameSize).toBe(keys.frame_size);
  });

  it('names the bad field', () => {
    const base = () => structuredClone(readJson('ref/mimi_tiny_config.json'));
    const cases: [(j: any) => void, RegExp][] = [
      [(j) => delete j.mimi_config.seanet, /field 'mimi_config\.seanet' is missing/],
      [(j) => (j.mimi_config.seanet.n_filters = 8.5), /field 'mimi_config\.seanet\.n_filters' must be an integer/],
      [(j) => (j.mimi_config.seanet.norm = 'weight_norm'), /field 'mimi_config\.seanet\.norm' must be "none"/],
      [(j) => (j.mimi_config.quantizer.bins = '64'), /field 'mimi_config\.quantizer\.bins' must be a number/],
      [(j) => (j.mimi_config.transformer.num_heads = 5), /field 'mimi_config\.transformer\.num_heads' \(5\) must divide d_model \(64\)/],
      [(j) => (j.num_codebooks = 9), /field 'num_codebooks' must be between 1 and quantizer\.n_q \(8\), got 9/],
      [(j) => (j.mimi_config.frame_rate = 10), /field 'frame_rate' \(10\) must divide the encoder frame rate/],
      [(j) => (j.mimi_config.channels = 2), /field 'mimi_config\.channels' must be 1/],
    ];
    for (const [edit, re] of cases) {
      const j = base();
      edit(j);
      expect(() => parseMimiConfig(j, 'cfg.json')).toThrow(MimiConfigError);
      expect(() => parseMimiConfig(j, 'cfg.json')).toThrow(re);
    }
    expect(() => parseMimiConfig(null)).toThrow(/must be a JSON object/);
  });
});
