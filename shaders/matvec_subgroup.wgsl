// matvec_subgroup: the subgroup reduction of the matvec kernels, the entry point `main_subgroup`,
// compiled as `enable subgroups;` + a matvec body (shaders/matvec.wgsl, shaders/matvec_quant.wgsl)
// + shaders/matvec_fuse.wgsl + this file (src/kernels/linear.ts builds the module); the body and
// matvec_fuse.wgsl provide what shaders/matvec_reduce.wgsl lists.
// Used only when the device has the `subgroups` feature and the adapter reports one fixed
// subgroup size (GPUAdapterInfo subgroupMinSize == subgroupMaxSize, e.g. 32 on NVIDIA/Apple, 4 on
// SwiftShader): then a workgroup of SG = that size threads is exactly one subgroup, and the
// 4 row sums (and Σx² under NORM 1) reduce with subgroupAdd: no workgroup memory, no barrier
// (except the fused attention prologue's, ATTN 1).
// Dispatch: ceil(N/4) workgroups folded over x/y (grid1d), as `main`.
override SG: u32 = 32;

@compute @workgroup_size(SG)
fn main_subgroup(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = lid.x;
  let g = wid.x + wid.y * nwg.x;
  if (g * ROWS >= params.n) { return; }   // uniform: whole workgroup past the end of a folded grid
  attend_prologue(t, SG);                  // ATTN only: its barriers are the only ones here
  let sum = subgroupAdd(row_partials(t, SG, rows_of(g)));
  var ss = 0.0;
  if (NORM != 0u) { ss = subgroupAdd(sumsq); }
  finish(g, t, sum, ss);
}
