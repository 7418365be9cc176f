// rope: rotary position embedding, interleaved pairs, in place (moshi/modules/rope.py `apply_rope`,
// interleave=True). Row t of x holds `heads` heads of head_dim values from column 0 (row stride
// row_stride elements); pair i of a head is (x[2i], x[2i+1]) (real, imaginary) and rotates by the
// angle θ = freqs[i] · f32(offset + t):
//   x'[2i] = x[2i]·cos θ - x[2i+1]·sin θ,   x'[2i+1] = x[2i]·sin θ + x[2i+1]·cos θ
// freqs[i] = exp(i · (-ln(max_period) · 2 / head_dim)) comes from the host (computed as torch
// does in f32). θ is formed in f32 like torch; cos/sin use our own argument reduction and
// polynomials (error ~1e-7 for θ < 1.6e6) because WGSL's builtins only promise 2^-11 absolute.
// x: f32, freqs: [head_dim/2] f32. One thread per pair (rows·heads·head_dim/2 threads), flat
// index folded over x/y workgroups.
override WG: u32 = 64;

struct Params { rows: u32, row_stride: u32, heads: u32, head_dim: u32, offset: u32 }

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> freqs: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

// (sin θ, cos θ) for θ ≥ 0: quadrant q = round(θ·2/π), r = θ - q·π/2 with π/2 in three parts
// (1.5703125 = 201/2^7, 2029/2^22, 7.5497899e-8) and q split as qh + ql (qh a multiple of 2^12):
// every product and difference but the last ones is exact for q < 2^20 (θ < 1.6e6), so r is
// accurate to ~1e-7; then Cephes sinf/cosf polynomials on [-π/4, π/4] and the quadrant's signs.
fn sincos(theta: f32) -> vec2<f32> {
  let q = round(theta * 0.636619772367581343);
  let qh = floor(q * (1.0 / 4096.0)) * 4096.0;
  let ql = q - qh;
  var r = theta - qh * 1.5703125;
  r = r - ql * 1.5703125;
  r = r - qh * 4.837512969970703125e-4;
  r = r - ql * 4.837512969970703125e-4;
  r = r - q * 7.54978995489188216e-8;
  let z = r * r;
  let s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  let k = u32(i32(q) & 3);
  switch k {
    case 0u: { return vec2<f32>(s, c); }
    case 1u: { return vec2<f32>(c, -s); }
    case 2u: { return vec2<f32>(-s, -c); }
    default: { return vec2<f32>(-c, s); }
  }
}

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
