/** Odd sizes every kernel is tested over (CTS style): catch tails, partial workgroups, folding. */
export const ODD_SIZES = [1, 3, 17, 63, 315, 2179] as const;
