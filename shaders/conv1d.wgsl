// conv1d: causal streaming 1-D convolution in time-major layout (moshi/modules/conv.py
// StreamingConv1d: torch.cat([state.previous, x]) then nn.Conv1d with no padding).
//   xcat = [prev | x] along time; prev holds the P = (K-1)·DIL + 1 - STRIDE rows of left context
//          (zeros after reset; with REPLICATE = 1 and params.first = 1 every prev row reads x[0],
//          the 'replicate' pad of ConvDownsample1d on the first streaming call)
//   y[t, co] = bias[co] + res[t, co] + Σ_{k<K} Σ_{ci<cin_g} wt[g, k·cin_g + ci, co - g·cout_g] · act(xcat[t·S + k·DIL, g·cin_g + ci])
//   with g = co / cout_g, cin_g = Cin / G, cout_g = Cout / G, act = identity (ACT 0) or ELU α=1 (ACT 1,
//   the nn.ELU that precedes every SEANet conv, fused into the input read; ELU(0) = 0 keeps zero padding exact).
// Layouts (row-major): x [T_in, C_in] · prev [P, C_in] · y, res [T_out, C_out] with
//   T_out = (P + T_in - ((K-1)·DIL + 1)) / S + 1 · bias [C_out] (read when has_bias = 1) ·
//   wt [G, K·cin_g, cout_g]: the PyTorch weight W[co, ci, k] relaid at load time (src/kernels/conv1d.ts
//   relayoutConv1dWeight) so that one reduction row r = k·cin_g + ci is contiguous over output channels.
// Unused optional inputs (prev when P = 0, bias, res) are bound to another read-only tensor and not read.
//
// Entry points (same bindings, each uses all of them):
// - `main` (G = 1): the tiled implicit GEMM of shaders/conv_gemm.wgsl (appended to this file by
//   src/kernels/conv1d.ts), M = T_out (time), N = C_out, R = K·C_in, one GEMM (z = 0); A is x
//   gathered through the causal/padding index map, act applied once per staged value.
//   Dispatch (ceil(C_out/TN), ceil(T_out/TM)).
// - `grouped` (any G, e.g. depthwise): one thread per y element (flat = t·C_out + co), folded over
//   x/y workgroups. Dispatch grid1d(T_out·C_out, 64).
// TM, TN, TK (tile), ACT (0 identity, 1 ELU) and act() are declared in shaders/conv_gemm.wgsl.
override REPLICATE: u32 = 0u;

struct Params { t_in: u32, t_out: u32, c_in: u32, c_out: u32, k: u32, stride: u32, dilation: u32, groups: u32, p: u32, first: u32, has_bias: u32, has_res: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> prev: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

/** act(xcat[j, c]) where xcat = [prev | x]. */
fn xcat(j: u32, c: u32) -> f32 {
  let P = params.p;
  let C = params.c_in;
  if (j < P) {
    if (REPLICATE == 1u && params.first != 0u) { return act(x[c]); }
    return act(prev[j * C + c]);
  }
  return act(x[(j - P) * C + c]);
}

fn epilogue(t: u32, co: u32, acc: f32) {
  var v = acc;
  if (params.has_bias != 0u) { v += bias[co]; }
  if (params.has_res != 0u) { v += res[t * params.c_out + co]; }
  y[t * params.c_out + co] = v;
}

// GEMM hooks of shaders/conv_gemm.wgsl `main`.
fn gemm_rows(z: u32) -> u32 { return params.t_out; }
fn gemm_depth() -> u32 { return params.k * params.c_in; }
fn gemm_a(z: u32, t: u32, r: u32) -> f32 {
  let C = params.c_in;
  return xcat(t * params.stride + (r / C) * params.dilation, r % C);
}
fn gemm_b(z: u32, r: u32, n: u32) -> f32 { return wt[r * params.c_out + n]; }
fn gemm_store(z: u32, t: u32, n: u32, v: f32) { epilogue(t, n, v); }

@compute @workgroup_size(64)
fn grouped(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  let N = params.c_out;
  if (idx >= params.t_out * N) { return; }
  let t = idx / N;
  let co = idx % N;
  let G = params.groups;
  let cin_g = params.c_in / G;
  let cout_g = N / G;
  let g = co / cout_g;
  let col = co % cout_g;
  let R = params.k * cin_g;
  var acc = 0.0;
  for (var k = 0u; k < params.k; k++) {
    let j = t * params.stride + k * params.dilation;
    for (var ci = 0u; ci < cin_g; ci++) {
      let r = k * cin_g + ci;
      acc = fma(wt[(g * R + r) * cout_g + col], xcat(j, g * cin_g + ci), acc);
    }
  }
  epilogue(t, co, acc);
}

// ---------------------------------------------------------------- direct (G = 1, no workgroup memory)
// Each thread computes 4 consecutive time rows × 4 consecutive output channels straight from
// storage (caches provide the reuse); consecutive threads take consecutive channel blocks.
// Accumulators, weights and row offsets live in vec4 registers, never in dynamically indexed
// arrays (CPU adapters such as SwiftShader spill those to memory: ~10× slower). store4 is in
// shaders/conv_gemm.wgsl.
// Dispatch grid1d(ceil(T_out/4)·ceil(C_out/4), 64).

/** act(xcat[jrow, ci]) for row jrow of [prev | x] (general path: rows may fall in the left context). */
fn xcat_row(jrow: u32, ci: u32, tin_last: u32, p_last: u32) -> f32 {
  let P = params.p;
  let C = params.c_in;
  if (jrow < P) {
    if (REPLICATE == 1u && params.first != 0u) { return act(x[ci]); }
    return act(prev[min(jrow, p_last) * C + ci]);
  }
  return act(x[min(jrow - P, tin_last) * C + ci]);
}

@compute @workgroup_size(64)
fn direct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  let N = params.c_out;
  let T = params.t_out;
  let C = params.c_in;
  let P = params.p;
  let S = params.stride;
  let nb = (N + 3u) / 4u;
  if (idx >= nb * ((T + 3u) / 4u)) { return; }
  let co0 = (idx % nb) * 4u;
  let t0 = (idx / nb) * 4u;
  let tin_last = max(params.t_in, 1u) - 1u;
  let p_last = max(P, 1u) - 1u;
  let c0 = co0;
  let c1 = min(co0 + 1u, N - 1u);
  let c2 = min(co0 + 2u, N - 1u);
  let c3 = min(co0 + 3u, N - 1u);
  // Time rows t0..t0+3 (clamped to the last output row; extra rows are computed, not stored).
  let r0 = t0 * S;
  let r1 = min(t0 + 1u, T - 1u) * S;
  let r2 = min(t0 + 2u, T - 1u) * S;
  let r3 = min(t0 + 3u, T - 1u) * S;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  if (r0 >= P) {
    // Fast path (all rows but the first few): every tap reads x, never the left context.
    for (var k = 0u; k < params.k; k++) {
      let kd = k * params.dilation - P;
      let x0 = min(r0 + kd, tin_last) * C;
      let x1 = min(r1 + kd, tin_last) * C;
      let x2 = min(r2 + kd, tin_last) * C;
      let x3 = min(r3 + kd, tin_last) * C;
      let rbase = k * C;
      for (var ci = 0u; ci < C; ci++) {
        let wrow = (rbase + ci) * N;
        let w = vec4<f32>(wt[wrow + c0], wt[wrow + c1], wt[wrow + c2], wt[wrow + c3]);
        a0 = fma(vec4<f32>(act(x[x0 + ci])), w, a0);
        a1 = fma(vec4<f32>(act(x[x1 + ci])), w, a1);
        a2 = fma(vec4<f32>(act(x[x2 + ci])), w, a2);
        a3 = fma(vec4<f32>(act(x[x3 + ci])), w, a3);
      }
    }
  } else {
    for (var k = 0u; k < params.k; k++) {
      let kd = k * params.dilation;
      let rbase = k * C;
      for (var ci = 0u; ci < C; ci++) {
        let wrow = (rbase + ci) * N;
        let w = vec4<f32>(wt[wrow + c0], wt[wrow + c1], wt[wrow + c2], wt[wrow + c3]);
        a0 = fma(vec4<f32>(xcat_row(r0 + kd, ci, tin_last, p_last)), w, a0);
        a1 = fma(vec4<f32>(xcat_row(r1 + kd, ci, tin_last, p_last)), w, a1);
        a2 = fma(vec4<f32>(xcat_row(r2 + kd, ci, tin_last, p_last)), w, a2);
        a3 = fma(vec4<f32>(xcat_row(r3 + kd, ci, tin_last, p_last)), w, a3);
      }
    }
  }
  store4(t0, T, co0, a0);
  store4(t0 + 1u, T, co0, a1);
  store4(t0 + 2u, T, co0, a2);
  store4(t0 + 3u, T, co0, a3);
}
