/** Sizes of moshi/modules/gating.py `ActivationGating` (no GPU code: the catalog and memory estimates use it too). */

/** Hidden size of `ActivationGating` for `dim` and `dim_feedforward`: 21·d/8 when it is 4·d, else 2·f/3. */
export function gatingHidden(dim: number, dimFeedforward: number): number {
  return dimFeedforward === 4 * dim ? Math.floor((21 * dim) / 8) : Math.floor((2 * dimFeedforward) / 3);
}
