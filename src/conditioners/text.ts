/**
 * LUT text conditioner: port of moshi/conditioners/text.py (`LUTConditioner`, `NoopTokenizer`,
 * `hash_trick`) and of the output projection + learnt padding of `BaseConditioner.forward`
 * (moshi/conditioners/base.py). Conditions are computed on the host, once per value: they are a
 * table lookup plus one small matrix-vector product.
 */
import type { VarBuilder } from '../weights/var_builder.ts';

/** A LUT text conditioner (moshi/conditioners/text.py LUTConditioner, tokenizer 'noop'). */
export interface LutConditionerConfig {
  type: 'lut';
  /** Number of bins; the table has nBins + 1 rows (row nBins = padding). */
  nBins: number;
  /** Embedding width of the LUT (the output projection maps it to the LM dim). */
  dim: number;
  /** Allowed values, index = row; null means hash-trick values (sha256 % nBins). */
  possibleValues: string[] | null;
}

/** A condition value that the conditioner cannot map (unknown name or value). */
export class ConditionError extends Error {
  override name = 'ConditionError';
}

/** sha256(word) as a big integer mod vocabSize (conditioners/text.py `hash_trick`). */
export async function hashTrick(word: string, vocabSize: number): Promise<number> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(word)));
  let h = 0n;
  for (const b of digest) h = (h << 8n) | BigInt(b);
  return Number(h % BigInt(vocabSize));
}

/**
 * `LUTConditioner(n_bins, dim, output_dim)` with tokenizer 'noop', force_linear, no output bias and
 * a learnt padding (the official defaults). Weights under `condition_provider.conditioners.<name>`:
 * `embed.weight [n_bins + 1, dim]`, `output_proj.weight [output_dim, dim]`,
 * `learnt_padding [1, 1, output_dim]`, kept as f32 on the host (the loaders keep conditioners f32).
 */
export class LUTConditioner {
  private constructor(
    readonly name: string,
    readonly cfg: LutConditionerConfig,
    readonly outputDim: number,
    private readonly embed: Float32Array, // [nBins + 1, dim]
    private readonly proj: Float32Array, // [outputDim, dim]
    private readonly padding: Float32Array, // [outputDim]
  ) {}

  /** Reads the weights at `vb` (= `condition_provider.conditioners.<name>`). Throws WeightError on missing/misshapen keys. */
  static load(vb: VarBuilder, name: string, cfg: LutConditionerConfig, outputDim: number): LUTConditioner {
    const embed = vb.host('embed.weight', [cfg.nBins + 1, cfg.dim]);
    const proj = vb.host('output_proj.weight', [outputDim, cfg.dim]);
    const padding = vb.host('learnt_padding', [1, 1, outputDim]);
    return new LUTConditioner(name, cfg, outputDim, embed, proj, padding);
  }

  /**
   * The token of `value` (NoopTokenizer): its index in possible_values, or the hash trick when there
   * is no list; null (no value) gives the padding index n_bins. Throws ConditionError for a value
   * outside possible_values.
   */
  async token(value: string | null): Promise<number> {
    if (value === null) return this.cfg.nBins;
    if (this.cfg.possibleValues) {
      const i = this.cfg.possibleValues.indexOf(value);
      if (i < 0) throw new ConditionError(`condition '${this.name}': '${value}' is not one of ${JSON.stringify(this.cfg.possibleValues)}`);
      return i;
    }
    return hashTrick(value, this.cfg.nBins);
  }

  /**
   * The condition vector [outputDim] f32 for `value`: output_proj(embed[token]) when a value is given
   * (mask 1), the learnt padding when value is null (mask 0), as BaseConditioner.forward computes it.
   */
  async condition(value: string | null): Promise<Float32Array> {
    const out = new Float32Array(this.outputDim);
    if (value === null) {
      out.set(this.padding);
      return out;
    }
    const tok = await this.token(value);
    const d = this.cfg.dim;
    const e = this.embed.subarray(tok * d, (tok + 1) * d);
    for (let o = 0; o < this.outputDim; o++) {
      let acc = 0;
      for (let i = 0; i < d; i++) acc += this.proj[o * d + i] * e[i];
      out[o] = acc;
    }
    return out;
  }
}
