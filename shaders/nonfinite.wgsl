// is_nonfinite (shared; appended to finite.wgsl and sample.wgsl by their TS siblings): true when x
//   is NaN or ±Infinity, i.e. its 8 exponent bits are all ones, (bits & 0x7F800000) == 0x7F800000
//   (tested on the bit pattern, so no float comparison can be optimised away).
fn is_nonfinite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}
