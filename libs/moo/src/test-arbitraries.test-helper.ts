import fc from 'fast-check';

/** Point sets for property tests: coordinates on a coarse grid so ties and duplicates occur. */
export function pointSets(
  options: { dimension?: number; minPoints?: number; maxPoints?: number; grid?: boolean } = {},
) {
  const dim =
    options.dimension === undefined ? fc.integer({ min: 2, max: 5 }) : fc.constant(options.dimension);
  const value =
    options.grid === false
      ? fc.double({ min: 0, max: 1, noNaN: true })
      : fc.integer({ min: 0, max: 8 }).map((v) => v / 8);
  return dim.chain((d) =>
    fc.array(fc.array(value, { minLength: d, maxLength: d }), {
      minLength: options.minPoints ?? 0,
      maxLength: options.maxPoints ?? 25,
    }),
  );
}
