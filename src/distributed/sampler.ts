/**
 * DistributedSampler's sharding: every epoch a permutation seeded by (seed, epoch), the same on
 * every rank, padded by repeating its head to a multiple of the world size; rank r takes positions
 * r, r+W, r+2W... So every rank runs the same number of steps and the union is the whole split.
 */
import { Rng, shuffle } from '../data/index.js';

export function shardForEpoch(indices: readonly number[], epoch: number, seed: number, rank: number, worldSize: number): number[] {
  const order = [...indices];
  shuffle(order, new Rng((seed * 1_000_003 + epoch * 7919) >>> 0));
  const perRank = Math.ceil(order.length / worldSize);
  const total = perRank * worldSize;
  for (let i = 0; order.length < total; i++) order.push(order[i % indices.length]);
  const out: number[] = [];
  for (let i = rank; i < total; i += worldSize) out.push(order[i]);
  return out;
}

/** Validation is not padded (duplicates would bias the Dice mean): rank r takes r, r+W, ... */
export function strided(indices: readonly number[], rank: number, worldSize: number): number[] {
  return indices.filter((_, i) => i % worldSize === rank);
}
