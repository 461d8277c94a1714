import type { Algorithm } from '../types.js';
import type { AlgorithmMath } from './algorithm.js';
import { fixedWindow } from './fixed-window.js';
import { slidingWindow } from './sliding-window.js';
import { tokenBucket } from './token-bucket.js';

export const ALGORITHM_MATH: Readonly<Record<Algorithm, AlgorithmMath<unknown>>> = Object.freeze({
  fixed_window: fixedWindow as AlgorithmMath<unknown>,
  sliding_window: slidingWindow as AlgorithmMath<unknown>,
  token_bucket: tokenBucket as AlgorithmMath<unknown>,
});

export { fixedWindow, slidingWindow, tokenBucket };
export type { AlgorithmMath, StepInput, StepResult } from './algorithm.js';
