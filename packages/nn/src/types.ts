// Array types shared by the nn modules.
export type FloatArray = Float32Array | Float64Array;
