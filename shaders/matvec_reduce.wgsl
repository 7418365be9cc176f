// matvec_reduce: the workgroup-memory reduction of the matvec kernels, appended by
// src/kernels/linear.ts after a matvec body (shaders/matvec.wgsl, shaders/matvec_quant.wgsl) and
// shaders/matvec_fuse.wgsl, which provide `row_partials(t, stride, rows) -> vec4<f32>` (the
// partial sums of 4 weight rows over thread t's share), `attend_prologue(t, threads)`, `rows_of(g)`, `finish(g, t, sums, Σx²)`,
// `sumsq`, `params.n` and NORM.
// Entry `main`: a workgroup of WG threads per 4 weight rows; the threads' vec4 partial sums (and
// Σx² under NORM 1) are reduced as a tree in workgroup memory. Dispatch ceil(N/4) workgroups
// folded over x/y (grid1d).
// (WG = 64: on SwiftShader 256 threads ran ~6× slower, per-invocation overhead dominating; 64
// keeps several 16-byte loads in flight per thread on GPUs.)
override WG: u32 = 64;    // threads per workgroup, a power of two

var<workgroup> red: array<vec4<f32>, WG>;   // per-thread partial sums of the 4 rows
var<workgroup> red_ss: array<f32, WG>;      // per-thread Σx² (NORM 1)

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = lid.x;
  let g = wid.x + wid.y * nwg.x;
  if (g * ROWS >= params.n) { return; }   // uniform: whole workgroup past the end of a folded grid
  attend_prologue(t, WG);
  red[t] = row_partials(t, WG, rows_of(g));
  if (NORM != 0u) { red_ss[t] = sumsq; }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) {
      red[t] += red[t + s];
      if (NORM != 0u) { red_ss[t] += red_ss[t + s]; }
    }
    workgroupBarrier();
  }
  finish(g, t, red[0], red_ss[0]);
}
