// unary: y[i] = f(x[i]) for an activation f chosen at compile time by OP:
//   0 ELU (alpha = 1):  x > 0 ? x : exp(x) - 1          (torch.nn.ELU, SEANet)
//   1 GELU (exact):     0.5 · x · (1 + erf(x / √2))      (F.gelu default, Mimi transformer FFN)
//   2 SiLU:             x / (1 + exp(-x))                (gating)
// gelu() comes from shaders/gelu.wgsl (prepended by src/kernels/unary.ts).
// x, y: [n] f32, contiguous. One thread per element; flat index folded over x/y workgroups.
override OP: u32 = 0;
override WG: u32 = 64;

struct Params { n: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

fn activate(v: f32) -> f32 {
  switch OP {
    case 0u: { return select(exp(v) - 1.0, v, v > 0.0); }
    case 1u: { return gelu(v); }
    default: { return v / (1.0 + exp(-v)); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) { return; }
  y[i] = activate(x[i]);
}
