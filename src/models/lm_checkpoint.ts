/**
 * The checkpoint layouts of the Moshi LM that Kyutai publishes, told apart from the tensors
 * themselves (names and dtypes, never the file name), and the MLX layout's keys renamed to the
 * official PyTorch ones so that one loader (src/models/lm.ts) reads them all:
 *
 * | format  | repository (LM file)                                  | linear weights            |
 * |---------|-------------------------------------------------------|---------------------------|
 * | f32/bf16/f16 | kyutai/moshiko-pytorch-bf16 (`model.safetensors`) | F32 / BF16 / F16           |
 * | q8      | kyutai/moshiko-pytorch-q8 (`model.q8.safetensors`)    | I8 `X.weight` + F32 `X.weight_scb` (bitsandbytes) |
 * | mlx-q4/q8 | kyutai/moshiko-mlx-q4 / -q8 (`model.q{4,8}.safetensors`) | U32 `X.weight` + BF16 `X.scales`, `X.biases` (MLX affine) |
 *
 * The MLX names are those of moshi_mlx `Lm` (moshi_mlx/models/lm.py `Lm.load_pytorch_weights`
 * gives the mapping from the PyTorch names): `audio_embs.{k}` = `emb.{k}`, RMSNorm `X.weight` [D]
 * = `X.alpha` [1, 1, D], `self_attn.in_proj` / `out_proj` = the module layout
 * `self_attn.in_projs.{s}` / `out_projs.{s}`, and the depformer unrolled per step s:
 * `depformer.slices.{s}.linear_in` = `depformer_in.{s}`, `.linear_out` = `linears.{s}`, `.emb` =
 * `depformer_text_emb` (s = 0) or `depformer_emb.{s-1}`, `.transformer.layers.{l}.X` =
 * `depformer.layers.{l}.X` with the step index moved into `in_projs.{s}`, `out_projs.{s}`,
 * `gating.{s}`; the per-slice norms are copies of the one shared PyTorch norm (checked equal).
 */
import type { TensorEntry } from '../weights/safetensors.ts';
import { WeightError } from '../weights/var_builder.ts';
import type { LmStorage } from './lm_memory.ts';

/** How the LM's matrices are stored. */
export type LmWeightFormat = 'f32' | 'f16' | 'bf16' | 'q8' | 'mlx';

export interface LmCheckpointFormat {
  /** Key layout: the official PyTorch names, or moshi_mlx `Lm` names. */
  layout: 'pytorch' | 'mlx';
  /** 'f32' / 'f16' / 'bf16': plain; 'q8': PyTorch int8; 'mlx': MLX affine (bits per tensor). */
  format: LmWeightFormat;
  /** A readable name: 'bf16', 'q8 (PyTorch int8)', 'MLX affine q4 g32'. */
  name: string;
  /** How the matrices will be stored on the GPU (for the memory estimate before loading). */
  storage: LmStorage;
}

const MLX_MARKERS = [/^audio_embs\./, /^depformer\.slices\./, /\.scales$/, /\.biases$/];
const PYTORCH_MARKERS = [/^emb\.\d+\./, /^depformer_in\./, /^linears\./, /\.alpha$/, /\.in_proj_weight$/, /_scb$/];

/**
 * Detects the layout and format of an LM checkpoint from its entries. Throws WeightError naming
 * the file and a key of each kind when the file mixes layouts (PyTorch and MLX names, or q8 and
 * MLX quantization). `dim` (the model width) names the MLX bit width and group size.
 */
export function detectLmFormat(entries: ReadonlyMap<string, TensorEntry>, source: string, dim?: number): LmCheckpointFormat {
  const keys = [...entries.keys()];
  const mlxKey = keys.find((k) => MLX_MARKERS.some((r) => r.test(k)));
  const ptKey = keys.find((k) => PYTORCH_MARKERS.some((r) => r.test(k)));
  if (mlxKey && ptKey) {
    throw new WeightError(`${source} mixes checkpoint layouts: '${ptKey}' is a PyTorch (moshi) key, '${mlxKey}' an MLX (moshi_mlx) key`);
  }
  const i8 = keys.find((k) => entries.get(k)!.dtype === 'I8');
  if (mlxKey) {
    if (i8) throw new WeightError(`${source} mixes quantization formats: '${i8}' is int8 (PyTorch q8) in an MLX checkpoint ('${mlxKey}')`);
    const tl = entries.get('text_linear.weight');
    const sc = entries.get('text_linear.scales');
    let detail = 'affine';
    let storage: LmStorage = { kind: 'affine', bits: 4, groupSize: 32 };
    if (tl?.dtype === 'U32' && sc && dim) {
      const bits = (tl.shape[1] * 32) / dim;
      detail = `affine q${bits} g${dim / sc.shape[1]}`;
      storage = { kind: 'affine', bits, groupSize: dim / sc.shape[1] };
    }
    return { layout: 'mlx', format: 'mlx', name: `MLX ${detail}`, storage };
  }
  if (i8) {
    const u32 = keys.find((k) => entries.get(k)!.dtype === 'U32');
    if (u32) throw new WeightError(`${source} mixes quantization formats: '${i8}' is int8 (PyTorch q8), '${u32}' packed U32 (MLX)`);
    return { layout: 'pytorch', format: 'q8', name: 'q8 (PyTorch int8)', storage: { kind: 'q8' } };
  }
  const probe = entries.get('transformer.layers.0.self_attn.in_proj_weight') ?? entries.get('text_linear.weight') ?? entries.get('text_emb.weight');
  const dt = probe?.dtype;
  const format: LmWeightFormat = dt === 'F16' ? 'f16' : dt === 'BF16' ? 'bf16' : 'f32';
  return { layout: 'pytorch', format, name: format, storage: { kind: format } };
}

/** An entry under another name (and shape: an MLX norm [D] read as alpha [1, 1, D]). */
function renamed(e: TensorEntry, name: string, shape = e.shape): TensorEntry {
  return { ...e, name, shape };
}

function sameBytes(a: TensorEntry, b: TensorEntry): boolean {
  if (a.dtype !== b.dtype || a.lazy || b.lazy || a.data.byteLength !== b.data.byteLength) return false;
  for (let i = 0; i < a.data.byteLength; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

/**
 * The entries of an MLX LM checkpoint under the official PyTorch names (see the module comment).
 * Keys that match no MLX name are kept as they are (the loader then reports them unused). Throws
 * WeightError when two MLX keys map to one official key with different values (per-slice norms
 * that differ: the official depformer shares one norm per layer).
 */
export function mlxToOfficialNames(entries: ReadonlyMap<string, TensorEntry>, source: string): Map<string, TensorEntry> {
  const out = new Map<string, TensorEntry>();
  const from = new Map<string, string>();
  const put = (mlxKey: string, name: string, e: TensorEntry) => {
    const prev = out.get(name);
    if (prev) {
      if (!sameBytes(prev, e)) throw new WeightError(`${source}: '${mlxKey}' and '${from.get(name)}' both give '${name}' but differ (the official model shares one depformer norm per layer)`);
      return;
    }
    out.set(name, e);
    from.set(name, mlxKey);
  };
  for (const [key, e] of entries) {
    let m: RegExpMatchArray | null;
    const norm = (prefix: string) => put(key, `${prefix}.alpha`, renamed(e, `${prefix}.alpha`, [1, 1, ...e.shape]));
    if ((m = key.match(/^out_norm\.weight$/))) norm('out_norm');
    else if ((m = key.match(/^audio_embs\.(\d+)\.(\w+)$/))) put(key, `emb.${m[1]}.${m[2]}`, renamed(e, `emb.${m[1]}.${m[2]}`));
    else if ((m = key.match(/^transformer\.layers\.(\d+)\.(norm[12])\.weight$/))) norm(`transformer.layers.${m[1]}.${m[2]}`);
    else if ((m = key.match(/^transformer\.layers\.(\d+)\.self_attn\.(in|out)_proj\.(\w+)$/))) {
      const name = `transformer.layers.${m[1]}.self_attn.${m[2]}_projs.0.${m[3]}`;
      put(key, name, renamed(e, name));
    } else if ((m = key.match(/^depformer\.slices\.(\d+)\.linear_in\.(\w+)$/))) put(key, `depformer_in.${m[1]}.${m[2]}`, renamed(e, `depformer_in.${m[1]}.${m[2]}`));
    else if ((m = key.match(/^depformer\.slices\.(\d+)\.linear_out\.(\w+)$/))) put(key, `linears.${m[1]}.${m[2]}`, renamed(e, `linears.${m[1]}.${m[2]}`));
    else if ((m = key.match(/^depformer\.slices\.(\d+)\.emb\.(\w+)$/))) {
      const s = Number(m[1]);
      const name = s === 0 ? `depformer_text_emb.${m[2]}` : `depformer_emb.${s - 1}.${m[2]}`;
      put(key, name, renamed(e, name));
    } else if ((m = key.match(/^depformer\.slices\.(\d+)\.transformer\.layers\.(\d+)\.(norm[12])\.weight$/))) norm(`depformer.layers.${m[2]}.${m[3]}`);
    else if ((m = key.match(/^depformer\.slices\.(\d+)\.transformer\.layers\.(\d+)\.self_attn\.(in|out)_proj\.(\w+)$/))) {
      const name = `depformer.layers.${m[2]}.self_attn.${m[3]}_projs.${m[1]}.${m[4]}`;
      put(key, name, renamed(e, name));
    } else if ((m = key.match(/^depformer\.slices\.(\d+)\.transformer\.layers\.(\d+)\.gating\.(linear_in|linear_out)\.(\w+)$/))) {
      const name = `depformer.layers.${m[2]}.gating.${m[1]}.${m[3]}.${m[4]}`;
      put(key, name, renamed(e, name));
    } else put(key, key, e);
  }
  return out;
}
