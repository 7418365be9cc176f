// peak_fma: the adapter's peak f32 compute, for the kernel page's roofline. Thread t starts four
//   vec4 accumulators at a_j = x0(t) + j/8 (x0(t) = (t mod 1024) / 1024) and runs
//   `iters` rounds of a_j = fma(a_j, M, C) for j = 0..3 (16 independent f32 FMA chains, no
//   memory traffic in the loop), then writes y[t] = the sum of the 16 lanes. With M = 0.999 and
//   C = 0.001 each chain contracts towards 1 (|error| shrinks by M per round), so no value
//   overflows or goes subnormal and the result depends on every round.
// FLOPs: 2 · 16 · iters per thread (an FMA counts as 2). Bytes: 4 per thread (the write).
// Layouts: y f32 [n]. Dispatch: grid1d(n, WG) workgroups of WG threads; thread t = gid.x +
//   gid.y * (num_workgroups.x * WG) handles y[t] (t < n).
override WG: u32 = 64;
const M: f32 = 0.999;
const C: f32 = 0.001;

struct Params { n: u32, iters: u32 }

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * (nwg.x * WG);
  if (t >= params.n) {
    return;
  }
  let x0 = f32(t % 1024u) / 1024.0;
  var a0 = vec4<f32>(x0, x0 + 0.125, x0 + 0.25, x0 + 0.375);
  var a1 = a0 + vec4<f32>(0.5);
  var a2 = a0 + vec4<f32>(1.0);
  var a3 = a0 + vec4<f32>(1.5);
  let m = vec4<f32>(M);
  let c = vec4<f32>(C);
  for (var i = 0u; i < params.iters; i++) {
    a0 = fma(a0, m, c);
    a1 = fma(a1, m, c);
    a2 = fma(a2, m, c);
    a3 = fma(a3, m, c);
  }
  let s = a0 + a1 + a2 + a3;
  y[t] = s.x + s.y + s.z + s.w;
}
