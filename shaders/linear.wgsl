// linear: y[m,n] = Σk x[m,k] · w[n,k] + b[n]      (torch.nn.functional.linear, f32 accumulation)
// x [M,K] f32 · w [N,K] (PyTorch layout) f32 | f16 | bf16 · b [N] f32 (read only when has_bias = 1;
// without a bias the TS side binds x there) · y [M,N] f32. All contiguous, row-major.
// f16/bf16 weights are packed two per u32 word (element 2i in the low 16 bits), so any element
// index e lives in word e >> 1 at bit offset 16·(e & 1); f32 weights are u32 words bitcast.
// DTYPE (override): 0 f32, 1 f16, 2 bf16.
//
// Entry points (same bindings, each uses all of them):
// - `matmul` (M > 1): register-blocked tiled GEMM. A workgroup of 16×16 threads owns a 64×64 tile
//   of y; each thread accumulates a 4×4 block (rows ty + 16·i, cols tx + 16·j) over K in slices of
//   16 staged through workgroup memory (x and w tiles stored k-major). Any M, N, K: loads outside
//   the matrices read 0, stores outside are skipped. Dispatch (ceil(N/64), ceil(M/64)).
// - `matvec` (M = 1, any K): generic matrix-vector product, one workgroup of WG threads per ROWS
//   output rows; threads stride over K with scalar (unpacked) loads; partial sums are reduced in
//   workgroup memory. Dispatch ceil(N/ROWS) workgroups, folded over x/y (grid1d). The aligned,
//   vectorized M = 1 path lives in shaders/matvec.wgsl.
override DTYPE: u32 = 0;
override WG: u32 = 256;   // matvec threads per workgroup, a power of two
const ROWS: u32 = 4u;     // matvec output rows per workgroup

struct Params { m: u32, n: u32, k: u32, has_bias: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

/** Weight element e (flat index into w [N,K]) as f32. */
fn w_at(e: u32) -> f32 {
  if (DTYPE == 0u) { return bitcast<f32>(w[e]); }
  let word = w[e >> 1u];
  let half = (word >> ((e & 1u) * 16u)) & 0xffffu;
  if (DTYPE == 1u) { return unpack2x16float(half).x; }
  return bitcast<f32>(half << 16u);
}

fn bias_at(n: u32) -> f32 {
  if (params.has_bias != 0u) { return b[n]; }
  return 0.0;
}

// ---------------------------------------------------------------- matmul (M > 1)
const TM: u32 = 64u;   // tile rows (of y / x)
const TN: u32 = 64u;   // tile cols (of y) = rows of w
const TK: u32 = 16u;   // K slice per stage
var<workgroup> xs: array<f32, 1024>;   // [TK][TM], k-major
var<workgroup> ws: array<f32, 1024>;   // [TK][TN], k-major

@compute @workgroup_size(16, 16)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let M = params.m;
  let N = params.n;
  let K = params.k;
  let tx = lid.x;
  let ty = lid.y;
  let flat = ty * 16u + tx;
  let n0 = wid.x * TN;
  let m0 = wid.y * TM;
  var acc: array<array<f32, 4>, 4>;
  for (var i = 0u; i < 4u; i++) { for (var j = 0u; j < 4u; j++) { acc[i][j] = 0.0; } }

  for (var k0 = 0u; k0 < K; k0 += TK) {
    // Stage x[m0 .. m0+64, k0 .. k0+16] and w[n0 .. n0+64, k0 .. k0+16]: 1024 values each,
    // 4 per thread; consecutive threads read consecutive k (contiguous in memory).
    for (var r = 0u; r < 4u; r++) {
      let e = flat + r * 256u;
      let row = e / TK;
      let kk = e % TK;
      let k = k0 + kk;
      let m = m0 + row;
      var xv = 0.0;
      if (m < M && k < K) { xv = x[m * K + k]; }
      xs[kk * TM + row] = xv;
      let n = n0 + row;
      var wv = 0.0;
      if (n < N && k < K) { wv = w_at(n * K + k); }
      ws[kk * TN + row] = wv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      var a: array<f32, 4>;
      var c: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = xs[kk * TM + ty + 16u * i]; }
      for (var j = 0u; j < 4u; j++) { c[j] = ws[kk * TN + tx + 16u * j]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], c[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }

  for (var j = 0u; j < 4u; j++) {
    let n = n0 + tx + 16u * j;
    if (n >= N) { continue; }
    let bn = bias_at(n);
    for (var i = 0u; i < 4u; i++) {
      let m = m0 + ty + 16u * i;
      if (m < M) { y[m * N + n] = acc[i][j] + bn; }
    }
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
