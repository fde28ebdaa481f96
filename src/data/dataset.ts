/**
 * A labelled image data set held in memory, NCHW float32 in [0, 1] (or normalised).
 */
export interface Dataset {
  /** Short name, e.g. 'mnist-train'. */
  readonly name: string;
  /** All images back to back: length = length * channels * height * width. */
  readonly images: Float32Array;
  /** Class index per image. */
  readonly labels: Int32Array;
  /** Number of images. */
  readonly length: number;
  /** Shape of one image: [channels, height, width]. */
  readonly imageShape: readonly [number, number, number];
  readonly numClasses: number;
}

/** One mini-batch. */
export interface Batch {
  /** [batchSize, C, H, W] */
  input: import('../tensor.js').Tensor<'float32'>;
  labels: Int32Array;
  /** Position of each image in its data set (set by `DataLoader`), e.g. to look up cached teacher outputs. */
  indices?: Int32Array;
}
