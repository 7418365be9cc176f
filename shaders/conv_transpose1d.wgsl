// conv_transpose1d: causal streaming transposed 1-D convolution in time-major layout
// (moshi/modules/conv.py StreamingConvTranspose1d.forward: nn.ConvTranspose1d, then the first
// PT = K - S outputs get the previous call's carried partial sums and the last PT outputs are
// carried, WITHOUT bias, to the next call instead of being returned).
//   full[t, co] = Σ_{k<K, i: i·S + k = t} Σ_{ci<cin_g} W[g·cin_g + ci, co - g·cout_g, k] · act(x[i, g·cin_g + ci])
//   y[t, co] = full[t, co] + (t < T·S ? bias[co] : 0) + (t < PT ? partial[t, co] : 0),   t ∈ [0, T·S + PT)
// Rows t < T·S are this call's output; rows [T·S, T·S + PT) are the new partial state (no bias),
// which src/modules/conv.ts copies into `partial` afterwards (contiguous rows in this layout).
// With t = s·S + ph the taps are k = ph + m·S (m < TAPS = ceil(K/S)) at input row i = s - m, so each
// output phase ph is an ordinary convolution over x: the weight is relaid at load time
// (src/kernels/conv_transpose1d.ts relayoutConvTr1dWeight) to wt [G, S, TAPS·cin_g, cout_g] with
// wt[g, ph, m·cin_g + ci, col] = W[g·cin_g + ci, col, ph + m·S] (0 where ph + m·S ≥ K).
// Layouts (row-major): x [T, C_in] · partial [PT, C_out] · bias [C_out] (read when has_bias = 1) ·
// y [T·S + PT, C_out]. act: identity (ACT 0) or ELU α=1 (ACT 1, the SEANet nn.ELU before each convtr).
// Unused optional inputs (partial when PT = 0, bias) are bound to another read-only tensor.
//
// Entry points (same bindings, each uses all of them):
// - `main` (G = 1): per phase ph = z the tiled implicit GEMM of shaders/conv_gemm.wgsl
//   (appended to this file by src/kernels/conv_transpose1d.ts): M = output rows of that phase,
//   N = C_out, R = TAPS·C_in. Dispatch (ceil(C_out/TN), ceil(ceil((T·S+PT)/S)/TM), S).
// - `grouped` (any G, e.g. the channel-wise upsample with G = C_in = C_out): one thread per y
//   element (flat = t·C_out + co), folded over x/y. Dispatch grid1d((T·S+PT)·C_out, 64).
// TM, TN, TK (tile), ACT (0 identity, 1 ELU) and act() are declared in shaders/conv_gemm.wgsl.

struct Params { t_in: u32, t_ext: u32, c_in: u32, c_out: u32, k: u32, stride: u32, groups: u32, taps: u32, pt: u32, has_bias: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

fn epilogue(t: u32, co: u32, acc: f32) {
  var v = acc;
  if (params.has_bias != 0u && t < params.t_in * params.stride) { v += bias[co]; }
  if (t < params.pt) { v += partial[t * params.c_out + co]; }
  y[t * params.c_out + co] = v;
}

// GEMM hooks of shaders/conv_gemm.wgsl `main`: GEMM z = output phase ph, row s = output t = s·S + ph.
fn gemm_rows(ph: u32) -> u32 { return (params.t_ext + params.stride - 1u - ph) / params.stride; }
fn gemm_depth() -> u32 { return params.taps * params.c_in; }
fn gemm_a(ph: u32, s: u32, r: u32) -> f32 {
  let C = params.c_in;
  let m = r / C;
  if (s >= m && s - m < params.t_in) { return act(x[(s - m) * C + r % C]); }
  return 0.0;
}
fn gemm_b(ph: u32, r: u32, n: u32) -> f32 {
  let N = params.c_out;
  return wt[(ph * gemm_depth() + r) * N + n];
}
fn gemm_store(ph: u32, s: u32, n: u32, v: f32) { epilogue(s * params.stride + ph, n, v); }

@compute @workgroup_size(64)
fn grouped(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  let N = params.c_out;
  if (idx >= params.t_ext * N) { return; }
  let t = idx / N;
  let co = idx % N;
  let S = params.stride;
  let G = params.groups;
  let cin_g = params.c_in / G;
  let cout_g = N / G;
  let g = co / cout_g;
  let col = co % cout_g;
  let s = t / S;
  let ph = t % S;
  let R = params.taps * cin_g;
  let wbase = (g * S + ph) * R;
  var acc = 0.0;
  for (var m = 0u; m < params.taps; m++) {
    if (m > s || s - m >= params.t_in) { continue; }
    let i = s - m;
    for (var ci = 0u; ci < cin_g; ci++) {
      let r = m * cin_g + ci;
      acc = fma(wt[(wbase + r) * cout_g + col], act(x[i * params.c_in + g * cin_g + ci]), acc);
    }
  }
  epilogue(t, co, acc);
}

// ---------------------------------------------------------------- direct (G = 1, no workgroup memory)
// Each thread computes 4 consecutive output rows of one phase (t = (s0 + i)·S + ph, i < 4) × 4
// consecutive output channels straight from storage; consecutive threads take consecutive channel
// blocks. Flat index = (ph · ceil(rows/4) + s-block) · ceil(C_out/4) + c-block, rows = ceil(t_ext/S).
// Accumulators and weights live in vec4 registers, never in dynamically indexed arrays (CPU
// adapters such as SwiftShader spill those to memory). store4: shaders/conv_gemm.wgsl.
// Dispatch grid1d(S · ceil(ceil(t_ext/S)/4) · ceil(C_out/4), 64).

@compute @workgroup_size(64)
fn direct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  let N = params.c_out;
  let C = params.c_in;
  let S = params.stride;
  let T = params.t_in;
  let nb = (N + 3u) / 4u;
  let rows_max = (params.t_ext + S - 1u) / S;
  let sb = (rows_max + 3u) / 4u;
  if (idx >= S * sb * nb) { return; }
  let co0 = (idx % nb) * 4u;
  let rest = idx / nb;
  let s0 = (rest % sb) * 4u;
  let ph = rest / sb;
  let R = params.taps * C;
  let wbase = ph * R * N;
  let c0 = co0;
  let c1 = min(co0 + 1u, N - 1u);
  let c2 = min(co0 + 2u, N - 1u);
  let c3 = min(co0 + 3u, N - 1u);
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var m = 0u; m < params.taps; m++) {
    // Input row s - m for output row s (valid when 0 <= s - m < T); masked rows read row 0 × 0.
    let ok = vec4<bool>((s0 >= m) && (s0 - m < T), (s0 + 1u >= m) && (s0 + 1u - m < T),
                        (s0 + 2u >= m) && (s0 + 2u - m < T), (s0 + 3u >= m) && (s0 + 3u - m < T));
    let x0 = select(0u, s0 - m, ok.x) * C;
    let x1 = select(0u, s0 + 1u - m, ok.y) * C;
    let x2 = select(0u, s0 + 2u - m, ok.z) * C;
    let x3 = select(0u, s0 + 3u - m, ok.w) * C;
    let mask = select(vec4<f32>(0.0), vec4<f32>(1.0), ok);
    for (var ci = 0u; ci < C; ci++) {
      let wrow = wbase + (m * C + ci) * N;
      let w = vec4<f32>(wt[wrow + c0], wt[wrow + c1], wt[wrow + c2], wt[wrow + c3]);
      let v = mask * vec4<f32>(act(x[x0 + ci]), act(x[x1 + ci]), act(x[x2 + ci]), act(x[x3 + ci]));
      a0 = fma(vec4<f32>(v.x), w, a0);
      a1 = fma(vec4<f32>(v.y), w, a1);
      a2 = fma(vec4<f32>(v.z), w, a2);
      a3 = fma(vec4<f32>(v.w), w, a3);
    }
  }
  store4(s0 * S + ph, params.t_ext, co0, a0);
  store4((s0 + 1u) * S + ph, params.t_ext, co0, a1);
  store4((s0 + 2u) * S + ph, params.t_ext, co0, a2);
  store4((s0 + 3u) * S + ph, params.t_ext, co0, a3);
}
