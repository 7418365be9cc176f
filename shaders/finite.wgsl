// finite_check: flags[0] |= params.bit when any element of x[0 .. n) is NaN or ±Infinity.
//   A float is non-finite exactly when its 8 exponent bits are all ones (is_nonfinite, in
//   shaders/nonfinite.wgsl, appended by src/kernels/finite.ts).
// Layouts: x f32 [n] (any shape, flat); flags u32, element 0 is OR-ed (never cleared here: the
//   caller clears it once per step, then several checks OR their own bits into it).
// Dispatch: grid1d(ceil(n / PER), WG) workgroups of WG threads; thread t reads the PER elements
//   [t * PER, (t + 1) * PER) (flat index t = gid.x + gid.y * (num_workgroups.x * WG)).
override WG: u32 = 64;
const PER: u32 = 16u;

struct Params { n: u32, bit: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> flags: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * (nwg.x * WG);
  let start = t * PER;
  var bad = 0u;
  for (var i = 0u; i < PER; i++) {
    let j = start + i;
    if (j < params.n) {
      bad = bad | select(0u, 1u, is_nonfinite(x[j]));
    }
  }
  if (bad != 0u) {
    atomicOr(&flags[0], params.bit);
  }
}
