// rvq: residual vector quantization over Euclidean codebooks (moshi/quantization/core_vq.py
// ResidualVectorQuantization.encode/decode with EuclideanCodebook; codebook_dim == dim, so the
// per-layer project_in/project_out are identities).
//   encode, per frame f, residual r = x[f]:  for q in 0..L-1:
//       c_q = argmin_j Σ_d (r[d] - cb[q, j, d])²   (ties -> lowest j, as torch.argmin)
//       codes[row0 + q, col0 + f] = c_q;  r -= cb[q, c_q];  y[f] += cb[q, c_q]
//     (y = the quantized sum, i.e. decode(codes) before the output projection)
//   decode: y[f, d] = (accumulate ? x[f, d] : 0) + Σ_q cb[q, codes[row0 + q, col0 + f], d]
//     (codes clamped to [0, bins); the TS side validates host codes before upload)
// Layouts: x, y [F, D] f32 row-major · cb [L, bins, D] f32 (centroids embedding_sum / clamp(usage, eps),
// computed at load) · codes i32 [rows, code_stride] row-major (codebook-major, as Mimi's [K, T]).
//
// Entry points (same bindings, each uses all of them):
// - `encode`: one workgroup of WG threads per frame (folded over x/y); threads stride over the
//   bins, a tree reduction picks (min distance, then min index); the residual lives in workgroup
//   memory (D ≤ 1024). Dispatch grid of F workgroups.
// - `decode`: one thread per y element (flat = f·D + d), folded. Dispatch grid1d(F·D, 64).
override WG: u32 = 128u;   // encode threads per workgroup, a power of two

struct Params { frames: u32, dim: u32, bins: u32, layers: u32, code_row0: u32, code_stride: u32, code_col0: u32, accumulate: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> cb: array<f32>;
@group(0) @binding(2) var<storage, read_write> codes: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

const MAXD: u32 = 1024u;
var<workgroup> resid: array<f32, MAXD>;
var<workgroup> best_d: array<f32, WG>;
var<workgroup> best_j: array<u32, WG>;

@compute @workgroup_size(WG)
fn encode(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let f = wid.x + wid.y * nwg.x;
  if (f >= params.frames) { return; }   // uniform per workgroup
  let D = params.dim;
  let B = params.bins;
  let tid = lid.x;
  for (var d = tid; d < D; d += WG) {
    resid[d] = x[f * D + d];
    y[f * D + d] = 0.0;
  }
  workgroupBarrier();
  for (var q = 0u; q < params.layers; q++) {
    let base = q * B * D;
    var bd = 3.4e38;
    var bj = 0xffffffffu;
    for (var j = tid; j < B; j += WG) {
      var acc = 0.0;
      let row = base + j * D;
      for (var d = 0u; d < D; d++) {
        let diff = resid[d] - cb[row + d];
        acc = fma(diff, diff, acc);
      }
      if (acc < bd) { bd = acc; bj = j; }
    }
    best_d[tid] = bd;
    best_j[tid] = bj;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (tid < s) {
        let od = best_d[tid + s];
        let oj = best_j[tid + s];
        let md = best_d[tid];
        let mj = best_j[tid];
        if (od < md || (od == md && oj < mj)) {
          best_d[tid] = od;
          best_j[tid] = oj;
        }
      }
      workgroupBarrier();
    }
    let c = min(best_j[0], B - 1u);
    if (tid == 0u) {
      codes[(params.code_row0 + q) * params.code_stride + params.code_col0 + f] = i32(c);
    }
    for (var d = tid; d < D; d += WG) {
      let v = cb[base + c * D + d];
      resid[d] = resid[d] - v;
      y[f * D + d] += v;
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(64)
fn decode(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  let D = params.dim;
  if (idx >= params.frames * D) { return; }
  let f = idx / D;
  let d = idx % D;
  var v = 0.0;
  if (params.accumulate != 0u) { v = x[idx]; }
  for (var q = 0u; q < params.layers; q++) {
    let raw = codes[(params.code_row0 + q) * params.code_stride + params.code_col0 + f];
    let c = u32(clamp(raw, 0, i32(params.bins) - 1));
    v += cb[(q * params.bins + c) * D + d];
  }
  y[idx] = v;
}
