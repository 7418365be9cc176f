// rope: rotary position embedding, interleaved pairs, in place (moshi/modules/rope.py `apply_rope`,
// interleave=True). Row t of x holds `heads` heads of head_dim values from column 0 (row stride
// row_stride elements); pair i of a head is (x[2i], x[2i+1]) (real, imaginary) and rotates by the
// angle θ = freqs[i] · f32(offset + t):
//   x'[2i] = x[2i]·cos θ - x[2i+1]·sin θ,   x'[2i+1] = x[2i]·sin θ + x[2i+1]·cos θ
// freqs[i] = exp(i · (-ln(max_period) · 2 / head_dim)) comes from the host (computed as torch
// does in f32). θ is formed in f32 like torch; cos/sin use our own argument reduction and
// polynomials (error ~1e-7 for θ < 1.6e6) because WGSL's builtins only promise 2^-11 absolute.
// sincos() comes from shaders/sincos.wgsl (prepended by src/kernels/rope.ts).
// x: f32, freqs: [head_dim/2] f32. One thread per pair (rows·heads·head_dim/2 threads), flat
// index folded over x/y workgroups.
override WG: u32 = 64;

struct Params { rows: u32, row_stride: u32, heads: u32, head_dim: u32, offset: u32 }

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> freqs: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = gid.x + gid.y * nwg.x * WG;
  let half = params.head_dim / 2u;
  let per_row = params.heads * half;
  if (p >= params.rows * per_row) { return; }
  let t = p / per_row;
  let rem = p - t * per_row;
  let h = rem / half;
  let i = rem - h * half;
  let theta = freqs[i] * f32(params.offset + t);
  let sc = sincos(theta);
  let o = t * params.row_stride + h * params.head_dim + 2u * i;
  let re = x[o];
  let im = x[o + 1u];
  x[o] = re * sc.y - im * sc.x;
  x[o + 1u] = re * sc.x + im * sc.y;
}
