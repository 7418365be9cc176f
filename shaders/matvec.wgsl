// matvec: y[n] = Σk x[k] · w[n,k] + b[n]     (torch.nn.functional.linear with one input row; the
// memory-bound decode path of Moshi). f32 accumulation.
// x [K] f32 · w [N,K] (PyTorch layout) f32 | f16 | bf16 · b [N] f32 (read only when has_bias = 1;
// without a bias the TS side binds x there) · y [N] f32.
// Vectorized: every load is 16 bytes. w is read as vec4<u32> words: for f16/bf16 one word holds
// 8 packed halves (element 2i in the low 16 bits of u32 i), for f32 4 floats. Requires K % 8 == 0
// (halves) or K % 4 == 0 (f32) so that every row starts on a 16-byte boundary; other K use the
// generic `matvec` entry of shaders/linear.wgsl. kw = vec4 words per row = K/8 (halves) or K/4.
// DTYPE (override): 0 f32, 1 f16, 2 bf16.
// This file is the body (`xin`, `row_partials`, `row_value`); shaders/matvec_fuse.wgsl (the fused
// RMSNorm prologue and the residual / gated-SiLU epilogues, overrides NORM and OUT) and the
// reduction (shaders/matvec_reduce.wgsl `main`, workgroup memory, or shaders/matvec_subgroup.wgsl
// `main_subgroup`, one subgroupAdd) are appended by src/kernels/linear.ts.
// Dispatch: one workgroup per 4 weight rows (matvec_fuse.wgsl `rows_of`), ceil(N/4) workgroups
// folded over x/y (grid1d). Threads stride over a row's words (consecutive threads read
// consecutive words: coalesced), each keeps a vec4 of partial sums (one per row).
override DTYPE: u32 = 2;

struct Params { n: u32, k: u32, kw: u32, has_bias: u32, eps: f32, rope_rows: u32, head_dim: u32, offset: u32, has_scale: u32, cap: u32, context: u32, scale: f32, stride: u32 }

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> alpha: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

/** One vec4<u32> weight word group · the matching x values. Halves: 8 packed elements, given
 *  x's even (xe) and odd (xo) elements of the chunk; f32: 4 elements · xe. */
fn dotw(v: vec4<u32>, xe: vec4<f32>, xo: vec4<f32>) -> f32 {
  if (DTYPE == 0u) { return dot(bitcast<vec4<f32>>(v), xe); }
  var lo: vec4<f32>;
  var hi: vec4<f32>;
  if (DTYPE == 1u) {
    let p0 = unpack2x16float(v.x);
    let p1 = unpack2x16float(v.y);
    let p2 = unpack2x16float(v.z);
    let p3 = unpack2x16float(v.w);
    lo = vec4<f32>(p0.x, p1.x, p2.x, p3.x);
    hi = vec4<f32>(p0.y, p1.y, p2.y, p3.y);
  } else {
    lo = bitcast<vec4<f32>>(v << vec4<u32>(16u));
    hi = bitcast<vec4<f32>>(v & vec4<u32>(0xffff0000u));
  }
  return dot(lo, xe) + dot(hi, xo);
}

/** Partial sums of the 4 weight rows r over words t, t + stride, ... (rows_of clamps rows past
 *  N to N-1, results discarded, so the loop stays branch-free). */
fn row_partials(t: u32, stride: u32, r: vec4<u32>) -> vec4<f32> {
  let kw = params.kw;
  let b0 = r.x * kw;
  let b1 = r.y * kw;
  let b2 = r.z * kw;
  let b3 = r.w * kw;
  var acc = vec4<f32>(0.0);
  for (var j = t; j < kw; j += stride) {
    var xe: vec4<f32>;
    var xo = vec4<f32>(0.0);
    if (DTYPE == 0u) {
      xe = xin(j);
    } else {
      let xa = xin(2u * j);
      let xb = xin(2u * j + 1u);
      xe = vec4<f32>(xa.x, xa.z, xb.x, xb.z);
      xo = vec4<f32>(xa.y, xa.w, xb.y, xb.w);
    }
    acc += vec4<f32>(dotw(w[b0 + j], xe, xo), dotw(w[b1 + j], xe, xo), dotw(w[b2 + j], xe, xo), dotw(w[b3 + j], xe, xo));
  }
  return acc;
}

/** Weight row `row`'s output from its full sum: + bias. */
fn row_value(row: u32, sum: f32) -> f32 {
  var bias = 0.0;
  if (params.has_bias != 0u) { bias = b[row]; }
  return sum + bias;
}
