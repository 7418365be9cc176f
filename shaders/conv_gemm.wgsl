// conv_gemm: the pieces conv1d.wgsl and conv_transpose1d.wgsl share, appended to each by its TS
// sibling (src/kernels/conv1d.ts, src/kernels/conv_transpose1d.ts; WGSL has no includes). Not a
// kernel on its own: it uses the including shader's `params` (with `c_out`), `epilogue`
// and the GEMM hooks below.
//
// `main`: a tiled implicit GEMM y[m, n] = Σ_r A[m, r] · B[r, n] per `z` = workgroup_id.z (one
// independent GEMM per z, e.g. an output phase of the transposed conv), M = gemm_rows(z),
// N = params.c_out, R = gemm_depth(). A workgroup of (TN/4)×(TM/4) threads owns a TM×TN tile;
// each thread accumulates 4×4 outputs (rows ty + (TM/4)·i, cols tx + (TN/4)·j) over R in slices
// of TK staged through workgroup memory; consecutive threads stage consecutive r of A (input
// channels, contiguous in x) and consecutive n of B (contiguous in wt).
// Dispatch (ceil(C_out/TN), ceil(M/TM), Z). The including shader defines the hooks:
//   gemm_rows(z) -> u32            M of GEMM z
//   gemm_depth() -> u32            R
//   gemm_a(z, m, r) -> f32         A[m, r] (m < M, r < R): the input gathered, act applied
//   gemm_b(z, r, n) -> f32         B[r, n] (r < R, n < N): the relaid weight
//   gemm_store(z, m, n, v)         writes output m, n (m < M, n < N) through its epilogue
override TM: u32 = 64u;
override TN: u32 = 64u;
override TK: u32 = 16u;
override ACT: u32 = 0u;

/** The fused input activation: identity (ACT 0) or ELU α=1 (ACT 1; ELU(0) = 0 keeps zero padding exact). */
fn act(v: f32) -> f32 {
  if (ACT == 1u) { return select(exp(v) - 1.0, v, v > 0.0); }
  return v;
}

var<workgroup> xs: array<f32, TK * TM>;   // [TK][TM], reduction-major
var<workgroup> ws: array<f32, TK * TN>;   // [TK][TN]

@compute @workgroup_size(TN / 4u, TM / 4u)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let WX = TN / 4u;
  let WY = TM / 4u;
  let NT = WX * WY;
  let tx = lid.x;
  let ty = lid.y;
  let flat = ty * WX + tx;
  let z = wid.z;
  let M = gemm_rows(z);
  let N = params.c_out;
  let R = gemm_depth();
  let n0 = wid.x * TN;
  let m0 = wid.y * TM;
  var acc: array<array<f32, 4>, 4>;
  for (var i = 0u; i < 4u; i++) { for (var j = 0u; j < 4u; j++) { acc[i][j] = 0.0; } }

  for (var r0 = 0u; r0 < R; r0 += TK) {
    for (var e = flat; e < TM * TK; e += NT) {
      let row = e / TK;
      let kk = e % TK;
      let r = r0 + kk;
      let m = m0 + row;
      var v = 0.0;
      if (m < M && r < R) { v = gemm_a(z, m, r); }
      xs[kk * TM + row] = v;
    }
    for (var e = flat; e < TK * TN; e += NT) {
      let kk = e / TN;
      let col = e % TN;
      let r = r0 + kk;
      let n = n0 + col;
      var v = 0.0;
      if (r < R && n < N) { v = gemm_b(z, r, n); }
      ws[kk * TN + col] = v;
    }
    workgroupBarrier();
    let kmax = min(TK, R - r0);
    for (var kk = 0u; kk < kmax; kk++) {
      var a: array<f32, 4>;
      var c: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = xs[kk * TM + ty + WY * i]; }
      for (var j = 0u; j < 4u; j++) { c[j] = ws[kk * TN + tx + WX * j]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], c[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let m = m0 + ty + WY * i;
    if (m >= M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + tx + WX * j;
      if (n < N) { gemm_store(z, m, n, acc[i][j]); }
    }
  }
}

// ---------------------------------------------------------------- helper of the `direct` entry points
// (4 output rows × 4 channels per thread straight from storage; accumulators and weights in vec4
// registers, never in dynamically indexed arrays, which CPU adapters such as SwiftShader spill.)

/** Writes the in-range lanes of output row t (< rows), channels co0..co0+3, through the epilogue. */
fn store4(t: u32, rows: u32, co0: u32, v: vec4<f32>) {
  if (t >= rows) { return; }
  let N = params.c_out;
  if (co0 < N) { epilogue(t, co0, v.x); }
  if (co0 + 1u < N) { epilogue(t, co0 + 1u, v.y); }
  if (co0 + 2u < N) { epilogue(t, co0 + 2u, v.z); }
  if (co0 + 3u < N) { epilogue(t, co0 + 3u, v.w); }
}
