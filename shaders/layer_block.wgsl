// layer_block: a transformer layer of one step (T = 1) in two dispatches instead of four, for
// models whose matrices are small enough that dispatches, not bytes, bound the step (the
// depformer: dep_q steps × num_layers layers per frame, each step waiting on the previous
// token). Port of moshi/modules/transformer.py `StreamingTransformerLayer` (`_sa_block`,
// `_ff_block`) for batch 1, T = 1, with RMSNorm (`_rms_norm`, f32), kv_repeat 1 and the short ring
// cache of `KVCache.rows` (src/kernels/attention.ts), and moshi/modules/gating.py
// `ActivationGating` (silu).
//
// WebGPU has no barrier across workgroups, so a matvec's output is complete only at the end of
// its dispatch, and the next RMSNorm needs all of it. Here each workgroup computes its share of
// the layer's second matrix product as a split-K partial sum instead, and the next block adds the
// partials up in its prologue (every workgroup of it, from L2):
//   attend_block, workgroup h = one head:
//     x = R + Σ_p P[p]                               (the previous block's residual and partials)
//     q | k | v of head h = in_proj rows of head h · rms_norm(x), RoPE on q, k (ROPE 1); written
//     into the cache's row of this step; o_h = softmax(q·Kᵀ/√dh) V over the ring (context window)
//     P'[h] = s1 ⊙ out_proj[:, h·dh : (h+1)·dh] · o_h;  R' = x  (workgroup 0)
//   ffn_block, workgroup j = hidden slice [j·B, (j+1)·B):
//     x = R + Σ_p P[p];  g = linear_in rows of the slice (gate and up halves) · rms_norm(x)
//     a = silu(g_gate) · g_up;  P'[j] = s2 ⊙ linear_out[:, slice] · a;  R' = x (workgroup 0)
//   sum_block (one workgroup per 64 elements): R' = R + Σ_p P[p], the layer stack's output.
// So x_{next} = R' + Σ P'[·]: the same sums as the official layer, associated per head / per
// slice (f32 rounding differs at the 1e-7 level). Workgroup counts: heads, ceil(H / B), ceil(D / 64).
//
// `st` holds two halves of (1 + MAXP) rows of D floats each (row 0 the residual R, rows 1.. the
// partials); a block reads the half at in_base and writes the other one (out_base), so no
// workgroup writes what another reads. `kv` is the layer's qkv rows [cap, stride] (attend_block;
// q | k | v at columns 0, D, 2D, heads (h d)); k and v are read rounded through f16 with KV_HALF 1
// as the packed-half cache stores them (exactly shaders/matvec_fuse.wgsl ATTN). `vecs` holds the
// layer's small vectors at the offsets in Params (RMSNorm alpha, LayerScale, RoPE frequencies;
// o_scale = 0xffffffff: no LayerScale). Weights: `w` (in_proj / linear_in) and `w2` (out_proj /
// linear_out) in one of the formats of shaders/weight_formats.wgsl (both the same format; the
// w2 accessors are a renamed copy of that file, made by src/kernels/layer_block.ts).
struct Params { d: u32, head_dim: u32, n_in: u32, in_base: u32, out_base: u32, hidden: u32, slice: u32, eps: f32, o_alpha: u32, o_scale: u32, o_freqs: u32, offset: u32, cap: u32, context: u32, scale: f32, stride: u32 }

@group(0) @binding(0) var<storage, read_write> st: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> wscale: array<u32>;
@group(0) @binding(3) var<storage, read> wbias: array<u32>;
@group(0) @binding(4) var<storage, read> w2: array<u32>;
@group(0) @binding(5) var<storage, read> w2scale: array<u32>;
@group(0) @binding(6) var<storage, read> w2bias: array<u32>;
@group(0) @binding(7) var<storage, read_write> kv: array<f32>;
@group(0) @binding(8) var<storage, read> vecs: array<f32>;
@group(0) @binding(9) var<uniform> params: Params;

override ROPE: u32 = 0;     // attend_block: RoPE on q and k
override KV_HALF: u32 = 0;  // attend_block: k, v read rounded through f16
override XS: u32 = 1;       // ≥ D: the workgroup's copy of the normalized input
override NR: u32 = 1;       // ≥ the rows of the first product (3·head_dim, or 2·B)
override NP: u32 = 1;       // ≥ the attended slots (cap) | the slice width B
const WG: u32 = 64u;
const LANES: u32 = 8u;      // threads per weight row in the first product (consecutive elements)
const NO_SCALE: u32 = 0xffffffffu;
const LOWEST: f32 = -3.402823e38;

var<workgroup> xs: array<f32, XS>;             // alpha ⊙ x
var<workgroup> red: array<f32, WG>;            // Σx² reduction
var<workgroup> part: array<f32, NR * LANES>;   // lane partial sums of the first product's rows
var<workgroup> rowv: array<f32, NR>;           // the first product's rows (q | k | v, or gate | up)
var<workgroup> pv: array<f32, NP>;             // attention scores then p (attend) | activations (ffn)
var<workgroup> ov: array<f32, NP>;             // unused by ffn; attend: o_h [head_dim] (NP ≥ head_dim)
var<workgroup> inv_rms: f32;
var<workgroup> psum: f32;

/** x = R + Σ partials into xs (alpha ⊙ x when `norm`), R' = x by workgroup 0 when `keep`; sets inv_rms. */
fn load_input(t: u32, keep: bool, norm: bool) {
  let d = params.d;
  var ss = 0.0;
  for (var i = t; i < d; i += WG) {
    var v = st[params.in_base + i];
    for (var p = 0u; p < params.n_in; p++) { v += st[params.in_base + (p + 1u) * d + i]; }
    if (keep) { st[params.out_base + i] = v; }
    ss += v * v;
    xs[i] = select(v, v * vecs[params.o_alpha + i], norm);
  }
  red[t] = ss;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
  if (t == 0u) { inv_rms = 1.0 / sqrt(params.eps + red[0] / f32(d)); }
  workgroupBarrier();
}

/**
 * rowv[r] = inv_rms · W[row(r)] · xs for r < nr (rows of w, K = D), LANES threads per row over
 * consecutive elements; row(r) = 0xffffffff marks a row past the matrix (0).
 */
fn first_product(t: u32, nr: u32, row0: u32, rows_per_part: u32, part_stride: u32) {
  let d = params.d;
  let lane = t % LANES;
  for (var r = t / LANES; r < nr; r += WG / LANES) {
    let row = row0 + (r / rows_per_part) * part_stride + r % rows_per_part;
    var acc = 0.0;
    for (var k = lane; k < d; k += LANES) { acc += weight_at(row * d + k, d) * xs[k]; }
    part[r * LANES + lane] = acc;
  }
  workgroupBarrier();
  for (var r = t; r < nr; r += WG) {
    var s = 0.0;
    for (var l = 0u; l < LANES; l++) { s += part[r * LANES + l]; }
    rowv[r] = s * inv_rms;
  }
  workgroupBarrier();
}

/** A cached k or v element as the cache holds it: f32, or rounded through f16 (KV_HALF 1). */
fn kv_round(v: f32) -> f32 {
  if (KV_HALF == 1u) { return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x; }
  return v;
}

/** Whether ring slot j is attended by the new step at pos = params.offset (shaders/matvec_fuse.wgsl att_valid). */
fn slot_valid(j: u32) -> bool {
  let cap = params.cap;
  let last = i32(params.offset);
  let delta = i32(j) - i32(params.offset % cap);
  let pos_k = select(last + delta - i32(cap), last + delta, delta <= 0);
  return pos_k >= 0 && u32(last - pos_k) < params.context;
}

/** P'[p] = LayerScale ⊙ w2[:, c0 : c0 + nc] · v (v = ov or pv), row n over its nc columns. */
fn second_product(t: u32, p: u32, c0: u32, nc: u32, kw2: u32, from_ov: bool) {
  let d = params.d;
  for (var n = t; n < d; n += WG) {
    var acc = 0.0;
    for (var c = 0u; c < nc; c++) {
      let a = select(pv[c], ov[c], from_ov);
      acc += weight2_at(n * kw2 + c0 + c, kw2) * a;
    }
    if (params.o_scale != NO_SCALE) { acc *= vecs[params.o_scale + n]; }
    st[params.out_base + (p + 1u) * d + n] = acc;
  }
}

@compute @workgroup_size(WG)
fn attend_block(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = lid.x;
  let h = wid.x;
  let d = params.d;
  let dh = params.head_dim;
  let cap = params.cap;
  load_input(t, h == 0u, true);
  // q | k | v of head h: in_proj rows part·D + h·dh + r (part 0 q, 1 k, 2 v).
  first_product(t, 3u * dh, h * dh, dh, d);
  // RoPE on q and k (interleaved pairs (2i, 2i+1) of the head, θ = freqs[i] · offset; shaders/rope.wgsl),
  // then the row of this step in the ring: kv[slot · stride + part · D + h · dh + r].
  let slot = params.offset % cap;
  for (var r = t; r < 3u * dh; r += WG) {
    var v = rowv[r];
    let c = r % dh;
    if (ROPE == 1u && r < 2u * dh) {
      let i = c / 2u;
      let sc = sincos(vecs[params.o_freqs + i] * f32(params.offset));
      let re = rowv[r - (c & 1u)];
      let im = rowv[r - (c & 1u) + 1u];
      v = select(re * sc.x + im * sc.y, re * sc.y - im * sc.x, (c & 1u) == 0u);
    }
    kv[slot * params.stride + (r / dh) * d + h * dh + c] = v;
  }
  storageBarrier();
  workgroupBarrier();
  // Scores (q · scale) · k_j of the valid slots, softmax (max-shifted), o_h = Σ_j p_j v_j / Σ p.
  let n_slots = min(params.offset + 1u, cap);
  let qb = slot * params.stride + h * dh;
  for (var j = t; j < n_slots; j += WG) {
    var s = LOWEST;
    if (slot_valid(j)) {
      var acc = 0.0;
      let kb = j * params.stride + d + h * dh;
      for (var e = 0u; e < dh; e++) { acc += kv[qb + e] * params.scale * kv_round(kv[kb + e]); }
      s = acc;
    }
    pv[j] = s;
  }
  workgroupBarrier();
  if (t == 0u) {
    var m = LOWEST;
    for (var j = 0u; j < n_slots; j++) { m = max(m, pv[j]); }
    var l = 0.0;
    for (var j = 0u; j < n_slots; j++) {
      let p = select(0.0, exp(pv[j] - m), slot_valid(j));
      pv[j] = p;
      l += p;
    }
    psum = l;
  }
  workgroupBarrier();
  for (var e = t; e < dh; e += WG) {
    var a = 0.0;
    for (var j = 0u; j < n_slots; j++) { a += pv[j] * kv_round(kv[j * params.stride + 2u * d + h * dh + e]); }
    ov[e] = a / psum;
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
  load_input(t, j == 0u, true);
  // Gate rows c0 .. c0 + nc of linear_in and the matching up rows H + c0 .. (ActivationGating: x.view(2, -1)).
  first_product(t, 2u * nc, c0, nc, hid);
  for (var c = t; c < nc; c += WG) {
    let g = rowv[c];
    pv[c] = g / (1.0 + exp(-g)) * rowv[nc + c];
  }
  workgroupBarrier();
  second_product(t, j, c0, nc, hid, false);
}

@compute @workgroup_size(WG)
fn sum_block(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let d = params.d;
  if (i >= d) { return; }
  var v = st[params.in_base + i];
  for (var p = 0u; p < params.n_in; p++) { v += st[params.in_base + (p + 1u) * d + i]; }
  st[params.out_base + i] = v;
}
