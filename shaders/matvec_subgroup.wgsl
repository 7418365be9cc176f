// matvec, subgroup reduction: the entry point `main_subgroup`, compiled as
// `enable subgroups;` + shaders/matvec.wgsl + this file (src/kernels/linear.ts builds the module),
// so it shares matvec.wgsl's formula, layouts, bindings, Params and `dotw`.
// Used only when the device has the `subgroups` feature and the adapter reports one fixed
// subgroup size (GPUAdapterInfo subgroupMinSize == subgroupMaxSize, e.g. 32 on NVIDIA/Apple, 4 on
// SwiftShader): then a workgroup of SG = that size threads is exactly one subgroup, and the
// 4 row sums reduce with one subgroupAdd: no workgroup memory, no barrier.
// Dispatch: ceil(N/4) workgroups folded over x/y (grid1d), as `main`.
override SG: u32 = 32;

@compute @workgroup_size(SG)
fn main_subgroup(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let N = params.n;
  let kw = params.kw;
  let t = lid.x;
  let row0 = (wid.x + wid.y * nwg.x) * ROWS;
  if (row0 >= N) { return; }   // uniform: whole workgroup past the end of a folded grid
  let b0 = row0 * kw;
  let b1 = min(row0 + 1u, N - 1u) * kw;
  let b2 = min(row0 + 2u, N - 1u) * kw;
  let b3 = min(row0 + 3u, N - 1u) * kw;
  var acc = vec4<f32>(0.0);
  for (var j = t; j < kw; j += SG) {
    var xe: vec4<f32>;
    var xo = vec4<f32>(0.0);
    if (DTYPE == 0u) {
      xe = x[j];
    } else {
      let xa = x[2u * j];
      let xb = x[2u * j + 1u];
      xe = vec4<f32>(xa.x, xa.z, xb.x, xb.z);
      xo = vec4<f32>(xa.y, xa.w, xb.y, xb.w);
    }
    acc += vec4<f32>(dotw(w[b0 + j], xe, xo), dotw(w[b1 + j], xe, xo), dotw(w[b2 + j], xe, xo), dotw(w[b3 + j], xe, xo));
  }
  let sum = subgroupAdd(acc);
  if (t < ROWS && row0 + t < N) {
    var bias = 0.0;
    if (params.has_bias != 0u) { bias = b[row0 + t]; }
    y[row0 + t] = sum[t] + bias;
  }
}
