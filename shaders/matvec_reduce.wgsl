// matvec_reduce: the workgroup-memory reduction of the matvec kernels, appended by
// src/kernels/linear.ts to a matvec body (shaders/matvec.wgsl, shaders/matvec_quant.wgsl) that
// provides `const ROWS` (4), `params.n`, `row_partials(t, stride, row0) -> vec4<f32>` (the partial
// sums of output rows row0..row0+3 over thread t's share) and `finish_row(row, sum)`.
// Entry `main`: a workgroup of WG threads per 4 output rows; the threads' vec4 partial sums are
// reduced as a tree in workgroup memory. Dispatch ceil(N/4) workgroups folded over x/y (grid1d).
// (WG = 64: on SwiftShader 256 threads ran ~6× slower, per-invocation overhead dominating; 64
// keeps several 16-byte loads in flight per thread on GPUs.)
override WG: u32 = 64;    // threads per workgroup, a power of two

var<workgroup> red: array<vec4<f32>, WG>;   // per-thread partial sums of the 4 rows

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = lid.x;
  let row0 = (wid.x + wid.y * nwg.x) * ROWS;
  if (row0 >= params.n) { return; }   // uniform: whole workgroup past the end of a folded grid
  red[t] = row_partials(t, WG, row0);
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
  if (t < ROWS && row0 + t < params.n) { finish_row(row0 + t, red[0][t]); }
}
