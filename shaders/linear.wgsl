// linear: y[m,n] = Σk x[m,k] · w[n,k] + b[n]      (torch.nn.functional.linear, f32 accumulation)
// x [M,K] f32 · w [N,K] (PyTorch layout) in any format of shaders/weight_formats.wgsl (prepended by
// src/kernels/linear.ts: f32, packed f16/bf16, q8, MLX affine; `wscale` / `wbias` hold the
// quantization scales and biases) · b [N] f32 (read only when has_bias = 1; without a bias the TS
// side binds x there) · ln [2, K] f32 (LayerNorm weight; bias, read only when NORM = 1; else x is
// bound there) · y [M,N] f32. All contiguous, row-major.
//
// Entry points (same bindings, each uses all of them):
// - `matmul` (M > 1): register-blocked GEMM. A workgroup of 8×8 threads owns a 32×32 tile of y;
//   each thread accumulates a 4×4 block (rows 4·ty + i, cols 4·tx + j) over K in steps of 4,
//   reading 4 x rows and 4 w rows as vec4 along K (both operands are K-contiguous) straight from
//   memory (neighbouring threads share rows through the cache); a scalar loop covers K % 4. No
//   workgroup memory or barriers: on SwiftShader this ran 10× faster than 16×16 threads with
//   64×64 shared-memory tiles. Any M, N, K. Dispatch (ceil(N/32), ceil(M/32)).
//   Fused prologue (override NORM; Mimi's norm1 / norm2 before in_proj / linear1):
//     NORM 0: x as stored
//     NORM 1: x' = LayerNorm(x) row by row (torch.nn.LayerNorm, biased variance, the arithmetic of
//             shaders/norm.wgsl OP 0): mean = Σx/K (summed as deviations from the row's first
//             value), var = Σ(x - mean)²/K (two passes over the row, not E[x²] - E[x]²), x' = (x - mean) · (1/sqrt(var + eps)) · ln[0, k] + ln[1, k].
//             Each thread takes the statistics of its own 4 rows (no workgroup memory, no barriers:
//             cheap for the few rows of a streaming step, K reads per row and pass).
//   Fused epilogue (override OUT; the streaming transformer's multi-step forward, e.g. Mimi's two
//   25 Hz steps per frame), v = the sum + bias:
//     OUT 0: y[m,n] = v
//     OUT 1: y[m,n] = y[m,n] + s[n] · v   (the residual add; s = aux [N], LayerScale, when has_scale = 1, else 1)
//     OUT 3: y[m,n] = v, then RoPE on columns n < rope_rows (q and k of an in_proj, heads of head_dim,
//            interleaved pairs (2i, 2i+1) rotated by θ = aux[i] · f32(offset + m): shaders/rope.wgsl's
//            arithmetic with sincos() of shaders/sincos.wgsl; a thread's 4 columns start at a
//            multiple of 4, so both values of a pair are its own)
//     OUT 4: y[m,n] = gelu(v)   (shaders/gelu.wgsl, the exact-erf GELU of unary.wgsl)
// - `matvec` (M = 1, any K; OUT 0 only): generic matrix-vector product, one workgroup of WG threads per ROWS
//   output rows; threads stride over K with scalar (unpacked) loads; partial sums are reduced in
//   workgroup memory. Dispatch ceil(N/ROWS) workgroups, folded over x/y (grid1d). The aligned,
//   vectorized M = 1 path lives in shaders/matvec.wgsl.
override WG: u32 = 64;    // matvec threads per workgroup, a power of two
override OUT: u32 = 0;    // matmul epilogue (see above)
override NORM: u32 = 0;   // matmul prologue (see above)
const ROWS: u32 = 4u;     // matvec output rows per workgroup

struct Params { m: u32, n: u32, k: u32, has_bias: u32, rope_rows: u32, head_dim: u32, offset: u32, has_scale: u32, eps: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> wscale: array<u32>;
@group(0) @binding(3) var<storage, read> wbias: array<u32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read> aux: array<f32>;
@group(0) @binding(6) var<storage, read> ln: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

/** Weight element e (flat index into w [N,K]) as f32. */
fn w_at(e: u32) -> f32 { return weight_at(e, params.k); }

fn bias_at(n: u32) -> f32 {
  if (params.has_bias != 0u) { return b[n]; }
  return 0.0;
}

// ---------------------------------------------------------------- matmul (M > 1)
fn x4(e: u32) -> vec4<f32> { return vec4<f32>(x[e], x[e + 1u], x[e + 2u], x[e + 3u]); }
fn w4(e: u32) -> vec4<f32> { return vec4<f32>(w_at(e), w_at(e + 1u), w_at(e + 2u), w_at(e + 3u)); }

/** NORM 1: (mean, 1/sqrt(var + eps)) of the x row starting at `base` (two passes: mean, then Σ(x - mean)²). */
fn ln_stats(base: u32) -> vec2<f32> {
  let K = params.k;
  // The mean as pivot + Σ(x - pivot)/K (pivot = the row's first value): a serial f32 sum of the
  // raw values would lose a large common offset's low bits (norm.wgsl sums pairwise instead).
  let pivot = x[base];
  var s = 0.0;
  for (var k = 0u; k < K; k++) { s += x[base + k] - pivot; }
  let mean = pivot + s / f32(K);
  var q = 0.0;
  for (var k = 0u; k < K; k++) { let c = x[base + k] - mean; q += c * c; }
  return vec2<f32>(mean, 1.0 / sqrt(q / f32(K) + params.eps));
}

/** x'[base + k .. + 4) after the prologue: as stored (NORM 0) or LayerNorm-ed with the row's `st`. */
fn xn4(base: u32, k: u32, st: vec2<f32>) -> vec4<f32> {
  let v = x4(base + k);
  if (NORM == 0u) { return v; }
  let K = params.k;
  return (v - st.x) * st.y * vec4<f32>(ln[k], ln[k + 1u], ln[k + 2u], ln[k + 3u]) + vec4<f32>(ln[K + k], ln[K + k + 1u], ln[K + k + 2u], ln[K + k + 3u]);
}

/** One element x'[base + k] (the K % 4 tail). */
fn xn1(base: u32, k: u32, st: vec2<f32>) -> f32 {
  let v = x[base + k];
  if (NORM == 0u) { return v; }
  return (v - st.x) * st.y * ln[k] + ln[params.k + k];
}

@compute @workgroup_size(8, 8)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let M = params.m;
  let N = params.n;
  let K = params.k;
  let mb = (wid.y * 8u + lid.y) * 4u;   // this thread's first row of y
  let nb = (wid.x * 8u + lid.x) * 4u;   // this thread's first column of y
  // Threads wholly past the end (most of them when M is small, e.g. the 2 rows of a Mimi
  // transformer step) leave at once: no barriers follow.
  if (mb >= M || nb >= N) { return; }
  // Row offsets of the 4 x rows and 4 w rows; rows past the end re-read the last one (results
  // discarded at the store) so the K loop needs no bounds checks.
  let xm0 = min(mb, M - 1u) * K;
  let xm1 = min(mb + 1u, M - 1u) * K;
  let xm2 = min(mb + 2u, M - 1u) * K;
  let xm3 = min(mb + 3u, M - 1u) * K;
  let wn0 = min(nb, N - 1u) * K;
  let wn1 = min(nb + 1u, N - 1u) * K;
  let wn2 = min(nb + 2u, N - 1u) * K;
  let wn3 = min(nb + 3u, N - 1u) * K;
  // Row statistics of the LayerNorm prologue (unused with NORM 0).
  var st0 = vec2<f32>(0.0, 1.0);
  var st1 = st0;
  var st2 = st0;
  var st3 = st0;
  if (NORM != 0u) {
    st0 = ln_stats(xm0);
    st1 = ln_stats(xm1);
    st2 = ln_stats(xm2);
    st3 = ln_stats(xm3);
  }
  // c_i[j] = y[mb + i, nb + j] partial sums.
  var c0 = vec4<f32>(0.0);
  var c1 = vec4<f32>(0.0);
  var c2 = vec4<f32>(0.0);
  var c3 = vec4<f32>(0.0);
  let k4 = K & ~3u;
  for (var k = 0u; k < k4; k += 4u) {
    let a0 = xn4(xm0, k, st0);
    let a1 = xn4(xm1, k, st1);
    let a2 = xn4(xm2, k, st2);
    let a3 = xn4(xm3, k, st3);
    let b0 = w4(wn0 + k);
    let b1 = w4(wn1 + k);
    let b2 = w4(wn2 + k);
    let b3 = w4(wn3 + k);
    c0 += vec4<f32>(dot(a0, b0), dot(a0, b1), dot(a0, b2), dot(a0, b3));
    c1 += vec4<f32>(dot(a1, b0), dot(a1, b1), dot(a1, b2), dot(a1, b3));
    c2 += vec4<f32>(dot(a2, b0), dot(a2, b1), dot(a2, b2), dot(a2, b3));
    c3 += vec4<f32>(dot(a3, b0), dot(a3, b1), dot(a3, b2), dot(a3, b3));
  }
  for (var k = k4; k < K; k++) {   // K % 4 tail
    let a = vec4<f32>(xn1(xm0, k, st0), xn1(xm1, k, st1), xn1(xm2, k, st2), xn1(xm3, k, st3));
    let bk = vec4<f32>(w_at(wn0 + k), w_at(wn1 + k), w_at(wn2 + k), w_at(wn3 + k));
    c0 += a.x * bk;
    c1 += a.y * bk;
    c2 += a.z * bk;
    c3 += a.w * bk;
  }
  let bias = vec4<f32>(bias_at(min(nb, N - 1u)), bias_at(min(nb + 1u, N - 1u)), bias_at(min(nb + 2u, N - 1u)), bias_at(min(nb + 3u, N - 1u)));
  let c = array<vec4<f32>, 4>(c0 + bias, c1 + bias, c2 + bias, c3 + bias);
  for (var i = 0u; i < 4u; i++) {
    let m = mb + i;
    if (m >= M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = nb + j;
      if (n < N) { y[m * N + n] = epilogue(m, n, c[i], j); }
    }
  }
}

/** The fused epilogue (OUT) of output (m, n), column j of the thread's row block `v`. */
fn epilogue(m: u32, n: u32, v: vec4<f32>, j: u32) -> f32 {
  switch OUT {
    case 1u: {
      var s = 1.0;
      if (params.has_scale != 0u) { s = aux[n]; }
      return y[m * params.n + n] + s * v[j];
    }
    case 3u: {
      if (n >= params.rope_rows) { return v[j]; }
      let p = j & ~1u;   // the pair (p, p + 1) of this thread's 4 columns
      let i = (n % params.head_dim) / 2u;
      let sc = sincos(aux[i] * f32(params.offset + m));
      if ((j & 1u) == 0u) { return v[p] * sc.y - v[p + 1u] * sc.x; }
      return v[p] * sc.x + v[p + 1u] * sc.y;
    }
    case 4u: { return gelu(v[j]); }
    default: { return v[j]; }
  }
}

// ---------------------------------------------------------------- matvec (M = 1, any K)
var<workgroup> red: array<f32, WG * ROWS>;   // [ROWS][WG] partial sums

@compute @workgroup_size(WG)
fn matvec(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
  let N = params.n;
  let K = params.k;
  let t = lid.x;
  let row0 = (wid.x + wid.y * nwg.x) * ROWS;
  if (row0 >= N) { return; }   // uniform: whole workgroup past the end of a folded grid
  var acc: array<f32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { acc[r] = 0.0; }
  for (var k = t; k < K; k += WG) {
    let xv = x[k];
    for (var r = 0u; r < ROWS; r++) {
      let row = min(row0 + r, N - 1u);
      acc[r] = fma(xv, w_at(row * K + k), acc[r]);
    }
  }
  for (var r = 0u; r < ROWS; r++) { red[r * WG + t] = acc[r]; }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) {
      for (var r = 0u; r < ROWS; r++) { red[r * WG + t] += red[r * WG + t + s]; }
    }
    workgroupBarrier();
  }
  if (t < ROWS && row0 + t < N) {
    y[row0 + t] = red[t * WG] + bias_at(row0 + t);
  }
}
