/**
 * `lm_gen_config` of an official config.json: the keyword arguments the official scripts pass to
 * `LMGen(lm, **lm_gen_config)` (moshi/models/lm.py). Parsed apart from the LMModel kwargs
 * (lm_config.ts) because they configure generation, not the model.
 */

/** Sampling defaults of a checkpoint (`lm_gen_config` in an official config.json). */
export interface LmGenDefaults {
  temp?: number;
  tempText?: number;
  topK?: number;
  topKText?: number;
}

/**
 * Keyword arguments of the official `LMGen.__init__` (moshi/models/lm.py) that an `lm_gen_config` may
 * carry besides the four sampling values this engine implements (temp, temp_text, top_k, top_k_text),
 * with the default this engine follows. `LMGen(lm, **lm_gen_config)` raises TypeError for any other
 * key; any other value of these is a feature this engine does not implement.
 */
const LMGEN_DEFAULT_ONLY: Record<string, unknown> = {
  use_sampling: true,
  cfg_coef: 1,
  check: false,
  condition_tensors: null,
  on_text_hook: null,
  on_text_logits_hook: null,
  on_audio_hook: null,
  support_out_of_sync: false,
  cfg_is_masked_until: null,
  cfg_is_no_text: false,
};

/**
 * Parses `lm_gen_config` into sampling defaults. Official `LMGen(lm, **lm_gen_config)` raises
 * TypeError for a key that is not an LMGen argument: those are refused, and so are the LMGen
 * options this engine does not implement at anything but their default.
 * `fail(key, message)` throws the caller's error (LmConfigError naming the source file);
 * keys are passed as `lm_gen_config.<name>`.
 */
export function parseLmGenConfig(g: unknown, fail: (key: string, msg: string) => never): LmGenDefaults {
  const lmGen: LmGenDefaults = {};
  if (typeof g !== 'object' || g === null || Array.isArray(g)) fail('lm_gen_config', `must be an object of LMGen arguments, got ${JSON.stringify(g)}`);
  const SAMPLING: Record<string, [keyof LmGenDefaults, 'temp' | 'topK']> = {
    temp: ['temp', 'temp'], temp_text: ['tempText', 'temp'], top_k: ['topK', 'topK'], top_k_text: ['topKText', 'topK'],
  };
  for (const [k, v] of Object.entries(g as Record<string, unknown>)) {
    const key = `lm_gen_config.${k}`;
    const s = SAMPLING[k];
    if (s) {
      if (s[1] === 'temp' && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) fail(key, `must be a number >= 0, got ${JSON.stringify(v)}`);
      if (s[1] === 'topK' && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) fail(key, `must be an integer >= 0, got ${JSON.stringify(v)}`);
      lmGen[s[0]] = v as number;
    } else if (k in LMGEN_DEFAULT_ONLY) {
      const def = LMGEN_DEFAULT_ONLY[k];
      if (v !== def) fail(key, `= ${JSON.stringify(v)} is not supported: this engine does not implement LMGen's '${k}' (only ${JSON.stringify(def)})`);
    } else if (k === 'lm_model') {
      fail(key, "is LMGen's model argument, not a generation option (official LMGen(lm, **lm_gen_config) raises TypeError)");
    } else {
      fail(key, 'is not an LMGen argument (official LMGen(lm, **lm_gen_config) raises TypeError); supported: temp, temp_text, top_k, top_k_text');
    }
  }
  return lmGen;
}
