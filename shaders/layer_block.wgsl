// layer_block: the transformer layers of one streaming call of T ≤ TM steps in two dispatches per
// layer instead of four or five, for the transformers whose matrices are small enough that
// dispatches, not bytes, bound the step: the depformer (dep_q steps × num_layers layers per frame,
// each step waiting on the previous token) and Mimi's encoder and decoder transformers (T = 2).
// Port of moshi/modules/transformer.py `StreamingTransformerLayer` (`_sa_block`, `_ff_block`) for
// batch 1 and kv_repeat 1, with `StreamingMultiheadAttention` over the ring KV cache
// (`RingKVCache`), RMSNorm (`_rms_norm`, f32) or LayerNorm (F.layer_norm), optional RoPE
// (interleaved) and LayerScale, and the FFN as moshi/modules/gating.py `ActivationGating` (silu)
// or linear2(gelu(linear1(·))).
//
// WebGPU has no barrier across workgroups, so a matvec's output is complete only at the end of
// its dispatch, and the next norm needs all of it. Here each workgroup computes its share of the
// layer's second matrix product as a split-K partial sum instead, and the next block adds the
// partials up in its prologue (every workgroup of it):
//   attend_block, workgroup h = one head:
//     x_t = R_t + Σ_p P[p]_t                         (the previous block's residual and partials)
//     q | k | v of head h = in_proj rows of head h · norm1(x_t), RoPE on q, k at position offset + t
//     (ROPE 1); k and v into the cache; o_t = softmax(q_t·Kᵀ/√dh) V over the ring after the write
//     (causal, within `context`); P'[h]_t = s1 ⊙ out_proj[:, h·dh : (h+1)·dh] · o_t;  R' = x (wg 0)
//   ffn_block, workgroup j = hidden slice [j·B, (j+1)·B):
//     x = R + Σ_p P[p];  silu gating: gate and up rows of the slice of linear_in · norm2(x),
//     a = silu(gate) · up;  GELU: a = gelu(linear1 rows of the slice · norm2(x))
//     P'[j] = s2 ⊙ linear_out[:, slice] · a;  R' = x (workgroup 0)
//   sum_block (one thread per element): y = R + Σ_p P[p], the layer stack's output, into the
//     tensor bound as `kv`.
// So x_next = R' + Σ P'[·]: the official layer's sums, associated per head / per slice (f32
// rounding differs at the 1e-7 level). Workgroup counts: heads, ceil(H / B), ceil(T·D / 64).
// Weights are read once per call for all T rows.
//
// `st` holds two halves of (1 + MAXP) blocks of T rows of D floats (block 0 the residual, blocks
// 1.. the partials; row t of block b at base + (b·T + t)·D); a block reads the half at in_base and
// writes the other (out_base), so no workgroup writes what another reads.
// `kv`, KVMODE 0 (short caches, T = 1): the layer's qkv rows [cap, stride] f32, q | k | v at
// columns 0, D, 2D (heads (h d)); the step's whole row is written and k, v are read rounded
// through f16 with KV_HALF 1, as the packed-half cache stores them (exactly matvec_fuse.wgsl ATTN).
// KVMODE 1: keys [H, cap, dh] then values (from v_base) of src/kernels/attention.ts KVCache, f32
// words, or with KV_HALF 1 packed halves two per u32 (element d in word d / 2, low half first;
// head_dim even), as shaders/attention.wgsl reads and writes them.
// `vecs` holds the layer's small vectors at the offsets in Params (norm weight, LayerNorm bias,
// LayerScale, RoPE frequencies; o_scale = 0xffffffff: no LayerScale). Weights: `w` (in_proj /
// linear_in / linear1) and `w2` (out_proj / linear_out / linear2), both in one format of
// shaders/weight_formats.wgsl (the w2 accessors are a renamed copy of that file, made by
// src/kernels/layer_block.ts).
struct Params { d: u32, head_dim: u32, n_in: u32, in_base: u32, out_base: u32, hidden: u32, slice: u32, eps: f32, o_alpha: u32, o_bias: u32, o_scale: u32, o_freqs: u32, offset: u32, cap: u32, context: u32, scale: f32, stride: u32, v_base: u32, t_len: u32 }

@group(0) @binding(0) var<storage, read_write> st: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> wscale: array<u32>;
@group(0) @binding(3) var<storage, read> wbias: array<u32>;
@group(0) @binding(4) var<storage, read> w2: array<u32>;
@group(0) @binding(5) var<storage, read> w2scale: array<u32>;
@group(0) @binding(6) var<storage, read> w2bias: array<u32>;
@group(0) @binding(7) var<storage, read_write> kv: array<u32>;
@group(0) @binding(8) var<storage, read> vecs: array<f32>;
@group(0) @binding(9) var<uniform> params: Params;

override NORM: u32 = 0;     // 0 RMSNorm (alpha ⊙ x, the products scaled by 1/rms), 1 LayerNorm (x normalized in xs)
override ACT: u32 = 0;      // ffn_block: 0 silu gating, 1 GELU (exact erf)
override ROPE: u32 = 0;     // attend_block: RoPE on q and k
override KVMODE: u32 = 0;   // attend_block: 0 qkv rows, 1 key / value ring
override KV_HALF: u32 = 0;  // attend_block: f16 cache
override TM: u32 = 1;       // rows T of this call (= params.t_len)
override XS: u32 = 1;       // ≥ D
override NR: u32 = 1;       // ≥ the rows of the first product (3·head_dim, 2·B or B)
override NP: u32 = 1;       // ≥ the ring's slots (cap) and B
override NO: u32 = 1;       // ≥ head_dim
// Threads per workgroup and threads per weight row in the first product (consecutive elements):
// 64 and 4 on GPUs (4 keeps Mimi's attention block, T = 2, 192 rows, 250 slots, within WebGPU's
// default 16 KiB of workgroup memory); 4 and 1 on CPU adapters, where every barrier of a wider
// workgroup costs a switch between its SIMD groups (src/kernels/layer_block.ts blockThreads).
override WG: u32 = 64u;
override LANES: u32 = 4u;
const NO_SCALE: u32 = 0xffffffffu;
const LOWEST: f32 = -3.402823e38;

var<workgroup> xs: array<f32, XS * TM>;              // row t: alpha ⊙ x_t (RMS) | layer_norm(x_t)
var<workgroup> red: array<f32, WG>;
var<workgroup> part: array<f32, NR * LANES * TM>;    // lane partial sums of the first product
var<workgroup> rowv: array<f32, NR * TM>;            // the first product's rows, row t at t·NR
var<workgroup> pv: array<f32, NP * TM>;              // scores then p (attend) | activations (ffn)
var<workgroup> ov: array<f32, NO * TM>;              // attend: o_t [head_dim] at t·NO
var<workgroup> rscale: array<f32, TM>;               // RMS: 1/rms of row t; LayerNorm: 1
var<workgroup> psum: array<f32, TM>;

/** Σ over the workgroup of each thread's v, the same in every thread (uniform control flow; two barriers). */
fn wg_sum(t: u32, v: f32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  var s = 0.0;
  for (var i = 0u; i < WG; i++) { s += red[i]; }
  workgroupBarrier();
  return s;
}

/** x_t = R_t + Σ partials into xs (normalized), R' = x by workgroup 0 when `keep`; sets rscale. */
fn load_input(t: u32, keep: bool) {
  let d = params.d;
  let tl = params.t_len;
  for (var r = 0u; r < tl; r++) {
    var s1 = 0.0;
    for (var i = t; i < d; i += WG) {
      var v = st[params.in_base + r * d + i];
      for (var p = 0u; p < params.n_in; p++) { v += st[params.in_base + ((p + 1u) * tl + r) * d + i]; }
      if (keep) { st[params.out_base + r * d + i] = v; }
      if (NORM == 0u) {
        // RMSNorm: the products run over alpha ⊙ x and are scaled by 1/sqrt(eps + mean(x²)).
        xs[r * d + i] = v * vecs[params.o_alpha + i];
        s1 += v * v;
      } else {
        xs[r * d + i] = v;
        s1 += v;
      }
    }
    let tot = wg_sum(t, s1);
    if (NORM == 0u) {
      if (t == 0u) { rscale[r] = 1.0 / sqrt(params.eps + tot / f32(d)); }
    } else {
      // LayerNorm: mean, then the biased variance of the centred values (two passes), weight and
      // bias; each thread touches only its own elements until the barrier below.
      let mean = tot / f32(d);
      var s2 = 0.0;
      for (var i = t; i < d; i += WG) { let c = xs[r * d + i] - mean; s2 += c * c; }
      let rstd = 1.0 / sqrt(wg_sum(t, s2) / f32(d) + params.eps);
      for (var i = t; i < d; i += WG) { xs[r * d + i] = (xs[r * d + i] - mean) * rstd * vecs[params.o_alpha + i] + vecs[params.o_bias + i]; }
      if (t == 0u) { rscale[r] = 1.0; }
    }
  }
  workgroupBarrier();
}

/**
 * rowv[t·NR + r] = rscale_t · W[row(r)] · xs_t for r < nr, every row t (rows of w, K = D), LANES
 * threads per weight row over consecutive elements, each weight read once for the T rows;
 * row(r) = row0 + (r / rows_per_part) · part_stride + r % rows_per_part.
 */
fn first_product(t: u32, nr: u32, row0: u32, rows_per_part: u32, part_stride: u32) {
  let d = params.d;
  let tl = params.t_len;
  let lane = t % LANES;
  for (var r = t / LANES; r < nr; r += WG / LANES) {
    let row = row0 + (r / rows_per_part) * part_stride + r % rows_per_part;
    var acc0 = 0.0;
    var acc1 = 0.0;
    // Word by word (D is a multiple of the elements per word, so rows start on a word): lanes read
    // consecutive words.
    let epw = weight_epw();
    let wb = row * (d / epw);
    for (var kw = lane; kw < d / epw; kw += LANES) {
      let word = w[wb + kw];
      for (var i = 0u; i < epw; i++) {
        let k = kw * epw + i;
        let wv = weight_in_word(word, i, row * d + k, d);
        acc0 += wv * xs[k];
        if (TM > 1u) { acc1 += wv * xs[d + k]; }
      }
    }
    part[r * LANES + lane] = acc0;
    if (TM > 1u) { part[(NR + r) * LANES + lane] = acc1; }
    // Rows 2.. (TM > 2): one more pass over the weights each.
    for (var q = 2u; q < tl; q++) {
      var acc = 0.0;
      for (var k = lane; k < d; k += LANES) { acc += weight_at(row * d + k, d) * xs[q * d + k]; }
      part[(q * NR + r) * LANES + lane] = acc;
    }
  }
  workgroupBarrier();
  for (var i = t; i < nr * tl; i += WG) {
    let q = i / nr;
    let r = i - q * nr;
    var s = 0.0;
    for (var l = 0u; l < LANES; l++) { s += part[(q * NR + r) * LANES + l]; }
    rowv[q * NR + r] = s * rscale[q];
  }
  workgroupBarrier();
}

/** A cached k or v element as the cache holds it: f32, or rounded through f16 (KV_HALF 1). */
fn kv_round(v: f32) -> f32 {
  if (KV_HALF == 1u) { return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x; }
  return v;
}

/** KVMODE 1: element e of the key (v = false) or value ring [H, cap, dh] as f32. */
fn ring_at(e: u32, v: bool) -> f32 {
  let base = select(0u, params.v_base, v);
  if (KV_HALF == 1u) { return unpack2x16float(kv[base + (e >> 1u)])[e & 1u]; }
  return bitcast<f32>(kv[base + e]);
}

/** The absolute position ring slot j holds after this call's write (shaders/attention.wgsl attend). */
fn slot_pos(j: u32) -> i32 {
  let last = i32(params.offset + params.t_len - 1u);
  let delta = i32(j) - i32((params.offset + params.t_len - 1u) % params.cap);
  return select(last + delta - i32(params.cap), last + delta, delta <= 0);
}

/** Key (t_len rows: of row q) of slot j element e of head h as the cache holds it. */
fn key_at(h: u32, j: u32, e: u32) -> f32 {
  let dh = params.head_dim;
  if (KVMODE == 0u) { return kv_round(bitcast<f32>(kv[j * params.stride + params.d + h * dh + e])); }
  return ring_at((h * params.cap + j) * dh + e, false);
}
fn value_at(h: u32, j: u32, e: u32) -> f32 {
  let dh = params.head_dim;
  if (KVMODE == 0u) { return kv_round(bitcast<f32>(kv[j * params.stride + 2u * params.d + h * dh + e])); }
  return ring_at((h * params.cap + j) * dh + e, true);
}

/** Input c of row q of the second product: the attention output (ov) or the FFN activation (pv). */
fn act_at(q: u32, c: u32, from_ov: bool) -> f32 {
  if (from_ov) { return ov[q * NO + c]; }
  return pv[q * NP + c];
}

/** P'[p]_t = LayerScale ⊙ w2[:, c0 : c0 + nc] · a_t (a = ov at t·NO or pv at t·NP), weights read once for the T rows. */
fn second_product(t: u32, p: u32, c0: u32, nc: u32, kw2: u32, from_ov: bool) {
  let d = params.d;
  let tl = params.t_len;
  for (var n = t; n < d; n += WG) {
    var acc0 = 0.0;
    var acc1 = 0.0;
    // Whole words of the segment (c0 and the row length kw2 multiples of the elements per word),
    // then the elements past the last whole word one by one.
    let epw = weight2_epw();
    var c = 0u;
    if (c0 % epw == 0u && kw2 % epw == 0u) {
      let wb = (n * kw2 + c0) / epw;
      for (var cw = 0u; cw < nc / epw; cw++) {
        let word = w2[wb + cw];
        for (var i = 0u; i < epw; i++) {
          let wv = weight2_in_word(word, i, n * kw2 + c0 + c, kw2);
          acc0 += wv * act_at(0u, c, from_ov);
          if (TM > 1u) { acc1 += wv * act_at(1u, c, from_ov); }
          c++;
        }
      }
    }
    for (; c < nc; c++) {
      let wv = weight2_at(n * kw2 + c0 + c, kw2);
      acc0 += wv * act_at(0u, c, from_ov);
      if (TM > 1u) { acc1 += wv * act_at(1u, c, from_ov); }
    }
    var ls = 1.0;
    if (params.o_scale != NO_SCALE) { ls = vecs[params.o_scale + n]; }
    st[params.out_base + (p + 1u) * tl * d + n] = acc0 * ls;
    if (TM > 1u) { st[params.out_base + ((p + 1u) * tl + 1u) * d + n] = acc1 * ls; }
    for (var q = 2u; q < tl; q++) {
      var acc = 0.0;
      for (var c = 0u; c < nc; c++) { acc += weight2_at(n * kw2 + c0 + c, kw2) * act_at(q, c, from_ov); }
      st[params.out_base + ((p + 1u) * tl + q) * d + n] = acc * ls;
    }
  }
}

@compute @workgroup_size(WG)
fn attend_block(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = lid.x;
  let h = wid.x;
  let d = params.d;
  let dh = params.head_dim;
  let cap = params.cap;
  let tl = params.t_len;
  load_input(t, h == 0u);
  // q | k | v of head h: in_proj rows part·D + h·dh + c (part 0 q, 1 k, 2 v), for every row.
  first_product(t, 3u * dh, h * dh, dh, d);
  // RoPE on q and k of row q at position offset + q (interleaved pairs (2i, 2i+1), θ = freqs[i] ·
  // position; shaders/rope.wgsl), in place: each pair by one thread.
  if (ROPE == 1u) {
    for (var i = t; i < tl * dh; i += WG) {
      let q = i / dh;
      let pr = i - q * dh;             // pair index over q (pr < dh/2) and k (dh/2 ≤ pr < dh)
      let c = 2u * (pr % (dh / 2u));
      let r = (pr / (dh / 2u)) * dh + c;
      let sc = sincos(vecs[params.o_freqs + c / 2u] * f32(params.offset + q));
      let re = rowv[q * NR + r];
      let im = rowv[q * NR + r + 1u];
      rowv[q * NR + r] = re * sc.y - im * sc.x;
      rowv[q * NR + r + 1u] = re * sc.x + im * sc.y;
    }
    workgroupBarrier();
  }
  // This call's rows into the cache: KVMODE 0 the whole q | k | v row of head h in slot offset % cap;
  // KVMODE 1 k and v of row q in slot (offset + q) % cap (pairs of halves per word with KV_HALF).
  if (KVMODE == 0u) {
    let slot = params.offset % cap;
    for (var r = t; r < 3u * dh; r += WG) { kv[slot * params.stride + (r / dh) * d + h * dh + r % dh] = bitcast<u32>(rowv[r]); }
  } else {
    let per = select(dh, dh / 2u, KV_HALF == 1u);   // words per cached row
    for (var i = t; i < tl * 2u * per; i += WG) {
      let q = i / (2u * per);
      let rem = i - q * 2u * per;
      let isv = rem >= per;
      let e = rem - select(0u, per, isv);
      let src = q * NR + select(dh, 2u * dh, isv);
      let at = (h * cap + (params.offset + q) % cap) * per + e + select(0u, params.v_base, isv);
      if (KV_HALF == 1u) { kv[at] = pack2x16float(vec2<f32>(rowv[src + 2u * e], rowv[src + 2u * e + 1u])); } else { kv[at] = bitcast<u32>(rowv[src + e]); }
    }
  }
  storageBarrier();   // also an execution barrier: the cache rows are visible to every thread
  // Scores (q · scale) · k_j of the attended slots of each row, softmax (max-shifted), o = Σ_j p_j v_j / Σ p.
  let n_slots = min(params.offset + tl, cap);
  for (var i = t; i < tl * n_slots; i += WG) {
    let q = i / n_slots;
    let j = i - q * n_slots;
    let pos_q = i32(params.offset + q);
    let pos_k = slot_pos(j);
    var s = LOWEST;
    if (pos_k >= 0 && pos_k <= pos_q && u32(pos_q - pos_k) < params.context) {
      var acc = 0.0;
      for (var e = 0u; e < dh; e++) { acc += rowv[q * NR + e] * params.scale * key_at(h, j, e); }
      s = acc;
    }
    pv[q * NP + j] = s;
  }
  workgroupBarrier();
  for (var q = t; q < tl; q += WG) {
    var m = LOWEST;
    for (var j = 0u; j < n_slots; j++) { m = max(m, pv[q * NP + j]); }
    var l = 0.0;
    for (var j = 0u; j < n_slots; j++) {
      let s = pv[q * NP + j];
      let p = select(0.0, exp(s - m), s > LOWEST);
      pv[q * NP + j] = p;
      l += p;
    }
    psum[q] = l;
  }
  workgroupBarrier();
  for (var i = t; i < tl * dh; i += WG) {
    let q = i / dh;
    let e = i - q * dh;
    var a = 0.0;
    for (var j = 0u; j < n_slots; j++) { a += pv[q * NP + j] * value_at(h, j, e); }
    ov[q * NO + e] = a / psum[q];
  }
  workgroupBarrier();
  second_product(t, h, h * dh, dh, d, true);
}

@compute @workgroup_size(WG)
fn ffn_block(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = lid.x;
  let j = wid.x;
  let hid = params.hidden;
  let b = params.slice;
  let c0 = j * b;
  let nc = min(b, hid - c0);
  let tl = params.t_len;
  load_input(t, j == 0u);
  // silu: gate rows c0 .. c0 + nc of linear_in and the matching up rows H + c0 .. (ActivationGating:
  // x.view(2, -1)); GELU: rows c0 .. c0 + nc of linear1.
  first_product(t, select(nc, 2u * nc, ACT == 0u), c0, nc, hid);
  for (var i = t; i < tl * nc; i += WG) {
    let q = i / nc;
    let c = i - q * nc;
    let g = rowv[q * NR + c];
    if (ACT == 0u) { pv[q * NP + c] = g / (1.0 + exp(-g)) * rowv[q * NR + nc + c]; } else { pv[q * NP + c] = gelu(g); }
  }
  workgroupBarrier();
  second_product(t, j, c0, nc, hid, false);
}

@compute @workgroup_size(WG)
fn sum_block(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let d = params.d;
  let tl = params.t_len;
  if (i >= tl * d) { return; }
  var v = st[params.in_base + i];
  let r = i / d;
  let e = i - r * d;
  for (var p = 0u; p < params.n_in; p++) { v += st[params.in_base + ((p + 1u) * tl + r) * d + e]; }
  kv[i] = bitcast<u32>(v);   // the output y [T, D], bound as kv
}
