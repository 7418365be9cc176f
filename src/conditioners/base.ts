/**
 * Condition provider and sum fuser: port of moshi/conditioners/base.py `ConditionProvider`
 * (`prepare_and_provide`: every conditioner must receive a value) and `ConditionFuser.get_sum`
 * (the condition vectors named under fuser 'sum' are added together; LMModel.forward_text adds the
 * sum to the input embeddings at every step).
 */
import type { VarBuilder } from '../weights/var_builder.ts';
import { ConditionError, LUTConditioner, type LutConditionerConfig } from './text.ts';

export { ConditionError, LUTConditioner } from './text.ts';

/** The LM config fields a ConditionProvider reads (src/models/lm_config.ts LmConfig has them). */
export interface ConditionProviderConfig {
  /** `dim`: the LM width each conditioner's output projection maps to. */
  dim: number;
  /** `conditioners` (name -> LUT conditioner). Empty when the model is unconditioned. */
  conditioners: Record<string, LutConditionerConfig>;
  /** `fuser.sum`: the condition names summed into the input embeddings. */
  fuserSum: readonly string[];
}

/** The conditioners of an LM (`condition_provider.conditioners.*`) plus its sum fuser. */
export class ConditionProvider {
  private constructor(readonly conditioners: ReadonlyMap<string, LUTConditioner>, readonly fuserSum: readonly string[]) {}

  /**
   * Loads every configured conditioner from `vb` (the LM's root VarBuilder), or returns null when
   * the config has none. Throws WeightError naming a missing/misshapen key.
   */
  static load(vb: VarBuilder, cfg: ConditionProviderConfig): ConditionProvider | null {
    const names = Object.keys(cfg.conditioners);
    if (!names.length) return null;
    const m = new Map<string, LUTConditioner>();
    for (const n of names) m.set(n, LUTConditioner.load(vb.pp('condition_provider').pp('conditioners').pp(n), n, cfg.conditioners[n], cfg.dim));
    return new ConditionProvider(m, cfg.fuserSum);
  }

  /**
   * `fuser.get_sum(condition_provider.prepare_and_provide([ConditionAttributes(text=values)]))`:
   * the summed condition vector [dim] f32, or null when the fuser sums nothing. A value of null
   * selects the conditioner's learnt padding. Throws ConditionError for a missing or unknown
   * condition name, or a value a conditioner does not know.
   */
  async conditionSum(values: Record<string, string | null>): Promise<Float32Array | null> {
    for (const k of Object.keys(values)) {
      if (!this.conditioners.has(k)) throw new ConditionError(`unknown condition '${k}'; the model has ${[...this.conditioners.keys()].map((n) => `'${n}'`).join(', ')}`);
    }
    const missing = [...this.conditioners.keys()].filter((k) => !(k in values));
    if (missing.length) {
      const hints = missing.map((k) => `'${k}' (${JSON.stringify(this.conditioners.get(k)!.cfg.possibleValues ?? 'any string')})`);
      throw new ConditionError(`some conditioners did not receive a value: ${hints.join(', ')}`);
    }
    let sum: Float32Array | null = null;
    for (const name of this.fuserSum) {
      const c = await this.conditioners.get(name)!.condition(values[name]);
      if (!sum) sum = c;
      else for (let i = 0; i < sum.length; i++) sum[i] += c[i];
    }
    return sum;
  }
}
