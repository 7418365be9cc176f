// matvec_fuse: what the matvec kernels fuse around the product, appended by src/kernels/linear.ts
// to a matvec body (shaders/matvec.wgsl, shaders/matvec_quant.wgsl), before the reduction. The
// body provides the bindings x (array<vec4<f32>>), alpha (array<vec4<f32>>), y (array<f32>),
// `params.n` (weight rows N), `params.k` (K), `params.eps`, and `row_value(row, sum)` (the row's
// scale and bias); it reads x only through `xin` (each x element once per thread's share) and
// `xpeek` (again, no side effect).
//   NORM 0: y = W · x
//   NORM 1: y = W · rms_norm(x) without the normalized copy (moshi/modules/transformer.py
//           `_rms_norm`, f32: x · alpha / sqrt(eps + mean(x²))): the product runs over alpha ⊙ x,
//           Σx² rides along in the same loads, and the row sums are scaled by 1/sqrt(eps + Σx²/K)
//   OUT 0: y[n] = v                      y [N]
//   OUT 1: y[n] = y[n] + s[n] · v        the residual add (x + linear(...)); y [N] is the residual,
//           s = aux (LayerScale, [N]) when has_scale = 1, else 1
//   OUT 2: y[j] = silu(v[j]) · v[H + j]  moshi/modules/gating.py (x.view(2, -1); act(x[0]) · x[1]),
//           H = N / 2 (N % 4 == 0): a workgroup takes rows 2g, 2g+1, H+2g, H+2g+1; y [H]
//   OUT 3: y[n] = v, then RoPE on rows n < rope_rows (the q and k of an attention in_proj: heads of
//           head_dim, interleaved pairs (2i, 2i+1) of a head rotated by θ = aux[i] · f32(offset) (aux =
//           the RoPE frequencies [head_dim / 2]),
//           exactly shaders/rope.wgsl's arithmetic; sincos() from shaders/sincos.wgsl); rows 2p, 2p+1
//           are in one workgroup since row groups start at multiples of 4 and head_dim is even
//   ATTN 1 (with NORM 0, one new step): the product's input is not x but the streaming attention
//           of that step (moshi/modules/transformer.py `StreamingMultiheadAttention.forward`, batch
//           1, T = 1, kv_repeat 1, between in_proj and out_proj), which every workgroup recomputes in
//           `attend_prologue` into workgroup memory (a short cache: the depformer's dep_q steps), so
//           attention + out_proj (+ residual) are one dispatch. x is then the layer's qkv rows
//           [cap, params.stride] f32 (row j starts with q | k | v of the step in ring slot j, heads
//           (h d), q and k rotated; src/kernels/attention.ts KVCache `rows`); the new step, at absolute position
//           pos = params.offset, is in row pos % cap. Slot j holds position pos_k = δ ≤ 0 ? pos + δ :
//           pos + δ - cap (δ = j - pos % cap, the ring's positions after the write), attended iff
//           pos_k ≥ 0 and pos - pos_k < context (params.context; 0xffffffff = none): exactly
//           shaders/attention.wgsl's attend for T = 1 (q · scale first, dots over vec4s, softmax
//           max-shifted, Σ p·v over slots in order, then / Σ p). KV_HALF 1 rounds k and v through
//           f16 as the packed-half cache stores them. D = params.k, head_dim = params.head_dim
//           (a multiple of 4), heads = D / head_dim, cap = params.cap,
//           scale = params.scale (1/sqrt(head_dim)). ATT_V = D / 4 and ATT_P = heads · (cap + 1)
//           size the workgroup memory (1 each without ATTN).
// where v = row_value(row, sum · scale). Dispatch: ceil(N/4) workgroups in every mode.
override NORM: u32 = 0;
override OUT: u32 = 0;
override ATTN: u32 = 0;
override KV_HALF: u32 = 0;
override ATT_V: u32 = 1;
override ATT_P: u32 = 1;
const ROWS: u32 = 4u; // weight rows per workgroup (one vec4 of partial sums per thread)

var<private> sumsq: f32 = 0.0;

var<workgroup> att: array<vec4<f32>, ATT_V>;   // ATTN: the attention output [D]
var<workgroup> att_p: array<f32, ATT_P>;        // ATTN: per head h, scores then p of slots j at h·(cap+1) + j, Σ p at h·(cap+1) + cap

const ATT_LOWEST: f32 = -3.402823e38;

/** A cached k or v vec4 as the cache holds it: f32, or rounded through f16 (KV_HALF 1). */
fn kv_round(v: vec4<f32>) -> vec4<f32> {
  if (KV_HALF == 1u) { return vec4<f32>(unpack2x16float(pack2x16float(v.xy)), unpack2x16float(pack2x16float(v.zw))); }
  return v;
}

/** Whether ring slot j (< min(pos + 1, cap)) is attended by the new step at pos = params.offset. */
fn att_valid(j: u32) -> bool {
  let cap = params.cap;
  let last = i32(params.offset);
  let delta = i32(j) - i32(params.offset % cap);
  let pos_k = select(last + delta - i32(cap), last + delta, delta <= 0);
  return pos_k >= 0 && u32(last - pos_k) < params.context;
}

/**
 * ATTN 1: the attention output of the new step into `att` by the nt threads of the workgroup
 * (thread t), in workgroup-uniform control flow; nothing without ATTN.
 */
fn attend_prologue(t: u32, nt: u32) {
  if (ATTN == 0u) { return; }
  let d = params.k;
  let dh = params.head_dim;
  let heads = d / dh;
  let cap = params.cap;
  let cp = cap + 1u;
  let stride = params.stride;
  let n_slots = min(params.offset + 1u, cap);
  let qb = (params.offset % cap) * stride;
  // Scores (q · scale) · k_j of every (head, slot), over vec4s (head_dim % 4 == 0, rows 16-byte aligned).
  let dh4 = dh / 4u;
  for (var i = t; i < heads * n_slots; i += nt) {
    let h = i / n_slots;
    let j = i - h * n_slots;
    var s = ATT_LOWEST;
    if (att_valid(j)) {
      var acc = 0.0;
      let q4 = (qb + h * dh) / 4u;
      let k4 = (j * stride + d + h * dh) / 4u;
      for (var e = 0u; e < dh4; e++) { acc += dot(x[q4 + e] * params.scale, kv_round(x[k4 + e])); }
      s = acc;
    }
    att_p[h * cp + j] = s;
  }
  workgroupBarrier();
  // Softmax over the slots of each head: p_j = exp(s_j - max), Σ p.
  for (var h = t; h < heads; h += nt) {
    var m = ATT_LOWEST;
    for (var j = 0u; j < n_slots; j++) { m = max(m, att_p[h * cp + j]); }
    var l = 0.0;
    for (var j = 0u; j < n_slots; j++) {
      let p = select(0.0, exp(att_p[h * cp + j] - m), att_valid(j));
      att_p[h * cp + j] = p;
      l += p;
    }
    att_p[h * cp + cap] = l;
  }
  workgroupBarrier();
  // Output dims 4i .. 4i+3 (one head): Σ_j p_j · v_j / Σ p.
  for (var i = t; i < d / 4u; i += nt) {
    let h = (4u * i) / dh;
    var a = vec4<f32>(0.0);
    for (var j = 0u; j < n_slots; j++) { a += att_p[h * cp + j] * kv_round(x[(j * stride + 2u * d) / 4u + i]); }
    att[i] = a / att_p[h * cp + cap];
  }
  workgroupBarrier();
}

/** x's vec4 i as the product reads it (alpha ⊙ x under NORM 1, Σx² accumulated; the attention output under ATTN). */
fn xin(i: u32) -> vec4<f32> {
  if (ATTN != 0u) { return att[i]; }
  let v = x[i];
  if (NORM != 0u) {
    sumsq += dot(v, v);
    return v * alpha[i];
  }
  return v;
}

/** xin without accumulating Σx² (a second read of the same elements). */
fn xpeek(i: u32) -> vec4<f32> {
  if (ATTN != 0u) { return att[i]; }
  if (NORM != 0u) { return x[i] * alpha[i]; }
  return x[i];
}

/** The 4 weight rows of workgroup g (rows past N clamped to N-1; their results are discarded). */
fn rows_of(g: u32) -> vec4<u32> {
  let n = params.n;
  if (OUT == 2u) {
    let h = n / 2u;
    return vec4<u32>(2u * g, 2u * g + 1u, h + 2u * g, h + 2u * g + 1u);
  }
  let r0 = g * ROWS;
  return vec4<u32>(r0, min(r0 + 1u, n - 1u), min(r0 + 2u, n - 1u), min(r0 + 3u, n - 1u));
}

/** Thread t < 4 of workgroup g writes its output from the reduced row sums s and Σx² ss. */
fn finish(g: u32, t: u32, s: vec4<f32>, ss: f32) {
  var scale = 1.0;
  if (NORM != 0u) { scale = 1.0 / sqrt(params.eps + ss / f32(params.k)); }
  let r = rows_of(g);
  if (OUT == 2u) {
    if (t < 2u) {
      let a = row_value(r[t], s[t] * scale);
      let c = row_value(r[t + 2u], s[t + 2u] * scale);
      y[2u * g + t] = a / (1.0 + exp(-a)) * c;
    }
    return;
  }
  let row = g * ROWS + t;
  if (t < ROWS && row < params.n) {
    let v = row_value(row, s[t] * scale);
    if (OUT == 1u) {
      var ls = 1.0;
      if (params.has_scale != 0u) { ls = aux[row]; }
      y[row] = y[row] + ls * v;
    } else if (OUT == 3u && row < params.rope_rows) {
      // The pair (row & ~1, row | 1): both values are in this workgroup's sums.
      let p = t & ~1u;
      let re = row_value(row & ~1u, s[p] * scale);
      let im = row_value(row | 1u, s[p + 1u] * scale);
      let i = (row % params.head_dim) / 2u;
      let sc = sincos(aux[i] * f32(params.offset));
      if ((t & 1u) == 0u) { y[row] = re * sc.y - im * sc.x; } else { y[row] = re * sc.x + im * sc.y; }
    } else {
      y[row] = v;
    }
  }
}
