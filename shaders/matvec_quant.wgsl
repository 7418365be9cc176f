// matvec_quant: y[n] = Σk x[k] · W[n,k] + b[n] for a quantized W (one input row: the memory-bound
// decode path of Moshi on the official quantized checkpoints), f32 accumulation, dequantized in
// registers: no dequantized copy of W exists anywhere.
// x [K] f32 · W [N,K] DTYPE 3 (q8) or 4 (affine, BITS, GS) of shaders/weight_formats.wgsl
// (prepended) · b [N] f32 (read only when has_bias = 1) · y [N] f32.
// Requires K % 4 == 0 (q8) so that rows start on a word; MLX affine rows always do (K % GS == 0).
// kw = words per row = K / 4 (q8) or K·BITS/32 (affine); each word holds EPW = 32/BITS elements,
// all in one group (GS % EPW == 0). Per word and row:
//   q8:     acc += Σ CB·x        (the row scale SCB/127 is applied once at the end)
//   affine: acc += scale · Σ q·x + bias · Σ x    per group (Σ x over the group, shared by the rows)
// This file is the body (`row_partials`, `finish_row`); the entry point comes from the reduction
// appended by src/kernels/linear.ts (shaders/matvec_reduce.wgsl or shaders/matvec_subgroup.wgsl).
// Dispatch: one workgroup per 4 consecutive output rows, ceil(N/4) workgroups folded over x/y
// (grid1d). q8: threads stride over a row's words (consecutive threads read consecutive
// words: coalesced); affine: threads stride over groups (a thread reads its group's GS·BITS/32
// contiguous words). Partial sums of the 4 rows in a vec4.
const ROWS: u32 = 4u;

struct Params { n: u32, k: u32, kw: u32, has_bias: u32 }

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> wscale: array<u32>;
@group(0) @binding(3) var<storage, read> wbias: array<u32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

/** Σ q·x over the EPW elements of `word`, whose first element is k0 (k0 % 4 == 0). */
fn word_dot(word: u32, k0: u32) -> f32 {
  if (DTYPE == 3u) {
    let q = vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(word) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
    return dot(q, x[k0 >> 2u]);
  }
  let mask = (1u << BITS) - 1u;
  var s = 0.0;
  for (var c = 0u; c < 32u / BITS; c += 4u) {
    let sh = vec4<u32>(c, c + 1u, c + 2u, c + 3u) * BITS;
    let q = vec4<f32>((vec4<u32>(word) >> sh) & vec4<u32>(mask));
    s += dot(q, x[(k0 + c) >> 2u]);
  }
  return s;
}

/** Σ x over the EPW elements starting at k0 (affine: the bias term). */
fn x_sum(k0: u32) -> f32 {
  var s = 0.0;
  for (var c = 0u; c < 32u / BITS; c += 4u) { s += dot(x[(k0 + c) >> 2u], vec4<f32>(1.0)); }
  return s;
}

/** Partial sums of rows row0..row0+3 over thread t's words (q8) or groups (affine), t + stride, ...
 *  Rows past N re-read row N-1 (results discarded) so the loop stays branch-free. */
fn row_partials(t: u32, stride: u32, row0: u32) -> vec4<f32> {
  let N = params.n;
  let K = params.k;
  let kw = params.kw;
  let r = vec4<u32>(row0, min(row0 + 1u, N - 1u), min(row0 + 2u, N - 1u), min(row0 + 3u, N - 1u));
  let base = r * kw;
  var acc = vec4<f32>(0.0);
  if (DTYPE == 3u) {
    for (var j = t; j < kw; j += stride) {
      let k0 = j * 4u;
      acc += vec4<f32>(word_dot(w[base.x + j], k0), word_dot(w[base.y + j], k0), word_dot(w[base.z + j], k0), word_dot(w[base.w + j], k0));
    }
  } else {
    // One group of GS elements (GS·BITS/32 words) per thread and iteration: its scale and bias
    // are read once per row, Σ x over the group once for all 4 rows.
    let epw = 32u / BITS;
    let wpg = GS / epw;        // words per group
    let groups = K / GS;       // groups per row
    for (var g = t; g < groups; g += stride) {
      let k0 = g * GS;
      var qd = vec4<f32>(0.0);
      var xs = 0.0;
      for (var i = 0u; i < wpg; i++) {
        let j = g * wpg + i;
        let kk = k0 + i * epw;
        qd += vec4<f32>(word_dot(w[base.x + j], kk), word_dot(w[base.y + j], kk), word_dot(w[base.z + j], kk), word_dot(w[base.w + j], kk));
        xs += x_sum(kk);
      }
      let gi = r * groups + vec4<u32>(g);
      let sc = vec4<f32>(wscale_bf16(gi.x), wscale_bf16(gi.y), wscale_bf16(gi.z), wscale_bf16(gi.w));
      let bi = vec4<f32>(wbias_bf16(gi.x), wbias_bf16(gi.y), wbias_bf16(gi.z), wbias_bf16(gi.w));
      acc += sc * qd + bi * xs;
    }
  }
  return acc;
}

/** y[row] = the row's full sum (· SCB/127 for q8) + bias. */
fn finish_row(row: u32, sum: f32) {
  var v = sum;
  if (DTYPE == 3u) { v = v * bitcast<f32>(wscale[row]) / 127.0; }
  if (params.has_bias != 0u) { v += b[row]; }
  y[row] = v;
}
