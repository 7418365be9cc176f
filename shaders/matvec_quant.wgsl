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
// Dispatch: one workgroup of WG threads per 4 consecutive output rows, ceil(N/4) workgroups folded
// over x/y (grid1d). q8: threads stride over a row's words (consecutive threads read consecutive
// words: coalesced); affine: threads stride over groups (a thread reads its group's GS·BITS/32
// contiguous words). Partial sums of the 4 rows in a vec4, reduced as a tree in workgroup memory.
override WG: u32 = 64;    // threads per workgroup, a power of two
const ROWS: u32 = 4u;

struct Params { n: u32, k: u32, kw: u32, has_bias: u32 }

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> wscale: array<u32>;
@group(0) @binding(3) var<storage, read> wbias: array<u32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

var<workgroup> red: array<vec4<f32>, WG>;

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

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let N = params.n;
  let K = params.k;
  let kw = params.kw;
  let t = lid.x;
  let row0 = (wid.x + wid.y * nwg.x) * ROWS;
  if (row0 >= N) { return; }   // uniform: whole workgroup past the end of a folded grid
  // Rows past N re-read row N-1 (results discarded) so the loop stays branch-free.
  let r = vec4<u32>(row0, min(row0 + 1u, N - 1u), min(row0 + 2u, N - 1u), min(row0 + 3u, N - 1u));
  let base = r * kw;
  var acc = vec4<f32>(0.0);
  if (DTYPE == 3u) {
    for (var j = t; j < kw; j += WG) {
      let k0 = j * 4u;
      acc += vec4<f32>(word_dot(w[base.x + j], k0), word_dot(w[base.y + j], k0), word_dot(w[base.z + j], k0), word_dot(w[base.w + j], k0));
    }
  } else {
    // One group of GS elements (GS·BITS/32 words) per thread and iteration: its scale and bias
    // are read once per row, Σ x over the group once for all 4 rows.
    let epw = 32u / BITS;
    let wpg = GS / epw;        // words per group
    let groups = K / GS;       // groups per row
    for (var g = t; g < groups; g += WG) {
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
  red[t] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
  if (t < ROWS && row0 + t < N) {
    let row = row0 + t;
    var v = red[0][t];
    if (DTYPE == 3u) { v = v * bitcast<f32>(wscale[row]) / 127.0; }
    if (params.has_bias != 0u) { v += b[row]; }
    y[row] = v;
  }
}
