// matvec_quant: y[n] = Σk x[k] · W[n,k] + b[n] for a quantized W (one input row: the memory-bound
// decode path of Moshi on the official quantized checkpoints), f32 accumulation, dequantized in
// registers: no dequantized copy of W exists anywhere.
// x [K] f32 · W [N,K] DTYPE 3 (q8) or 4 (affine, BITS, GS) in the layouts of
// shaders/weight_formats.wgsl · b [N] f32 (read only when has_bias = 1) · y [N] f32.
// Requires K·BITS % 128 == 0 (rows of whole vec4<u32> words: q8 and MLX 8-bit K % 16, MLX 4-bit
// K % 32, which MLX's group sizes guarantee, 2-bit K % 64); other K take the generic matvec.
// kv = vec4 words per row = K·BITS/128; one vec4 holds EPV = 128/BITS elements, a u32 word
// EPW = 32/BITS. Per row:
//   q8:     acc += Σ CB·x        (the row scale SCB/127 is applied once at the end)
//   affine: acc += scale · Σ q·x + bias · Σ x    over each group's part of a vec4 (Σ x shared by the rows)
// This file is the body (`row_partials`, `row_value`); shaders/matvec_fuse.wgsl (fused RMSNorm
// prologue, residual / gated-SiLU epilogues) and the reduction (shaders/matvec_reduce.wgsl or
// shaders/matvec_subgroup.wgsl) are appended by src/kernels/linear.ts.
// Dispatch: one workgroup per 4 weight rows (matvec_fuse.wgsl `rows_of`), ceil(N/4) workgroups folded over x/y
// (grid1d). Threads stride over a row's vec4 words (16-byte loads, consecutive threads read
// consecutive words: coalesced); each x vec4 is loaded once for the 4 rows. Partial sums of the
// 4 rows in a vec4.
struct Params { n: u32, k: u32, kw: u32, has_bias: u32, eps: f32, rope_rows: u32, head_dim: u32, offset: u32, has_scale: u32, cap: u32, context: u32, scale: f32, stride: u32 }

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> wscale: array<u32>;
@group(0) @binding(3) var<storage, read> wbias: array<u32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read> alpha: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> aux: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

// DTYPE / BITS / GS overrides and the bf16 scale/bias readers as in shaders/weight_formats.wgsl
// (not prepended here: that file reads `w` as u32 words, this one as vec4<u32>).
override DTYPE: u32 = 4;
override BITS: u32 = 4;
override GS: u32 = 32;
fn wscale_bf16(i: u32) -> f32 { return bitcast<f32>(((wscale[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu) << 16u); }
fn wbias_bf16(i: u32) -> f32 { return bitcast<f32>(((wbias[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu) << 16u); }

/** The 4 values of `word` at bit offsets `sh` (4 consecutive elements) as f32: int8 (q8) or unsigned BITS-bit. */
fn unq(word: u32, sh: vec4<u32>) -> vec4<f32> {
  if (DTYPE == 3u) { return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(word) << (vec4<u32>(24u) - sh)) >> vec4<u32>(24u)); }
  return vec4<f32>((vec4<u32>(word) >> sh) & vec4<u32>((1u << BITS) - 1u));
}

/** Σ q·x over the EPW elements (first: kw0) of one word of each of the 4 rows (q = those words). */
fn rows_dot(q: vec4<u32>, kw0: u32) -> vec4<f32> {
  var s = vec4<f32>(0.0);
  for (var c = 0u; c < 32u / BITS; c += 4u) {
    let xv = xin((kw0 + c) >> 2u);
    let sh = vec4<u32>(c, c + 1u, c + 2u, c + 3u) * BITS;
    s += vec4<f32>(dot(unq(q.x, sh), xv), dot(unq(q.y, sh), xv), dot(unq(q.z, sh), xv), dot(unq(q.w, sh), xv));
  }
  return s;
}

/** Σ x over the EPW elements of one word (first: kw0): the affine bias term. */
fn x_sum(kw0: u32) -> f32 {
  var s = 0.0;
  for (var c = 0u; c < 32u / BITS; c += 4u) { s += dot(xpeek((kw0 + c) >> 2u), vec4<f32>(1.0)); }
  return s;
}

/** scale · qd + bias · xs for the group holding element kw0 of each of the rows r (affine). */
fn affine_part(r: vec4<u32>, kw0: u32, qd: vec4<f32>, xs: f32) -> vec4<f32> {
  let gi = r * (params.k / GS) + vec4<u32>(kw0 / GS);
  let sc = vec4<f32>(wscale_bf16(gi.x), wscale_bf16(gi.y), wscale_bf16(gi.z), wscale_bf16(gi.w));
  let bi = vec4<f32>(wbias_bf16(gi.x), wbias_bf16(gi.y), wbias_bf16(gi.z), wbias_bf16(gi.w));
  return sc * qd + bi * xs;
}

/** Partial sums of the 4 weight rows r over vec4 words t, t + stride, ... (rows_of clamps rows
 *  past N to N-1, results discarded, so the loop stays branch-free). */
fn row_partials(t: u32, stride: u32, r: vec4<u32>) -> vec4<f32> {
  let kv = params.kw;
  let base = r * kv;
  let epw = 32u / BITS;
  var acc = vec4<f32>(0.0);
  for (var j = t; j < kv; j += stride) {
    let k0 = j * 4u * epw;
    let v0 = w[base.x + j];
    let v1 = w[base.y + j];
    let v2 = w[base.z + j];
    let v3 = w[base.w + j];
    // Word i of the vec4 of each row, unrolled (static component access).
    let d0 = rows_dot(vec4<u32>(v0.x, v1.x, v2.x, v3.x), k0);
    let d1 = rows_dot(vec4<u32>(v0.y, v1.y, v2.y, v3.y), k0 + epw);
    let d2 = rows_dot(vec4<u32>(v0.z, v1.z, v2.z, v3.z), k0 + 2u * epw);
    let d3 = rows_dot(vec4<u32>(v0.w, v1.w, v2.w, v3.w), k0 + 3u * epw);
    if (DTYPE == 3u) {
      acc += (d0 + d1) + (d2 + d3);
    } else if (GS >= 4u * epw) {
      // The vec4 lies in one group (MLX q4 g32, q8 g32/g64, ...): one scale and bias per row.
      let xs = x_sum(k0) + x_sum(k0 + epw) + x_sum(k0 + 2u * epw) + x_sum(k0 + 3u * epw);
      acc += affine_part(r, k0, (d0 + d1) + (d2 + d3), xs);
    } else {
      // A vec4 spanning groups (2-bit, group 32): scale and bias per word.
      acc += affine_part(r, k0, d0, x_sum(k0)) + affine_part(r, k0 + epw, d1, x_sum(k0 + epw))
           + affine_part(r, k0 + 2u * epw, d2, x_sum(k0 + 2u * epw)) + affine_part(r, k0 + 3u * epw, d3, x_sum(k0 + 3u * epw));
    }
  }
  return acc;
}

/** Weight row `row`'s output from its full sum: · SCB/127 for q8, + bias. */
fn row_value(row: u32, sum: f32) -> f32 {
  var v = sum;
  if (DTYPE == 3u) { v = v * bitcast<f32>(wscale[row]) / 127.0; }
  if (params.has_bias != 0u) { v += b[row]; }
  return v;
}
