// sincos: (sin θ, cos θ) in f32 for RoPE (shaders/rope.wgsl, the fused RoPE epilogue of
// shaders/matvec_fuse.wgsl), prepended to them by src/kernels/rope.ts and src/kernels/linear.ts.
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
