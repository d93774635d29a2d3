/** libtorch's global generator (weight init, random draws) as a Stateful: its state is a uint8 tensor the caller owns. */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import type { Stateful } from '../io/stateful.js';

export const torchRng: Stateful<Tensor> = {
  stateDict: () => E.getRngState(),
  loadStateDict: (state) => E.setRngState(state),
};
