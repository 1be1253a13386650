/** The arrays kernels compute on: f32 or f64, chosen per merge (`dtype`). */
export type FloatArray = Float32Array | Float64Array;

/** A zero-filled array of the same element type as `like`, of `length` elements (default: like's). */
export function allocLike(like: FloatArray, length: number = like.length): FloatArray {
  return like instanceof Float64Array ? new Float64Array(length) : new Float32Array(length);
}
