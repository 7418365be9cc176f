// gelu: the exact-erf GELU, 0.5 · x · (1 + erf(x / √2)) (F.gelu default, the Mimi transformer FFN),
// shared by shaders/unary.wgsl and the fused GELU epilogue of shaders/linear.wgsl (prepended to
// them by src/kernels/unary.ts and src/kernels/linear.ts).
// erf with max abs error 1.2e-7 (Numerical Recipes erfc, Chebyshev fit), computed in f32.
fn erf_approx(v: f32) -> f32 {
  let z = abs(v);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
          t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
          t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, v >= 0.0);
}

fn gelu(v: f32) -> f32 { return 0.5 * v * (1.0 + erf_approx(v * 0.70710678118654752)); }
