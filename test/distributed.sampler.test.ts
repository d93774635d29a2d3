// DistributedSampler-style sharding and the torchrun environment (no processes started).
import assert from 'node:assert/strict';
import test from 'node:test';
import { DistConfigError, shardForEpoch, strided, workerFromEnv } from '../src/distributed/index.js';

test('shards: equal sizes, padded by repeating, union is the split, per-epoch permutation shared by the ranks', () => {
  const split = [3, 9, 4, 7, 1, 8, 0];
  for (const world of [1, 2, 3, 4]) {
    const shards = Array.from({ length: world }, (_, r) => shardForEpoch(split, 5, 0, r, world));
    const per = Math.ceil(split.length / world);
    for (const s of shards) assert.equal(s.length, per);
    assert.deepEqual(
      [...new Set(shards.flat())].sort((a, b) => a - b),
      [...split].sort((a, b) => a - b),
    );
    assert.equal(shards.flat().length - split.length, per * world - split.length); // the padding only
  }
  assert.deepEqual(shardForEpoch(split, 5, 0, 1, 2), shardForEpoch(split, 5, 0, 1, 2));
  assert.notDeepEqual(shardForEpoch(split, 5, 0, 0, 1), shardForEpoch(split, 6, 0, 0, 1));
  assert.notDeepEqual(shardForEpoch(split, 5, 0, 0, 1), shardForEpoch(split, 5, 1, 0, 1));
});

test('validation shards are strided without padding', () => {
  assert.deepEqual(strided([10, 11, 12, 13, 14], 0, 2), [10, 12, 14]);
  assert.deepEqual(strided([10, 11, 12, 13, 14], 1, 2), [11, 13]);
});

test('a worker is recognised from RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT; bad values are named', () => {
  assert.equal(workerFromEnv({}), null);
  assert.deepEqual(workerFromEnv({ RANK: '3', WORLD_SIZE: '4', LOCAL_RANK: '1', MASTER_ADDR: '10.0.0.1', MASTER_PORT: '1234' }), {
    rank: 3,
    worldSize: 4,
    localRank: 1,
    masterAddr: '10.0.0.1',
    masterPort: 1234,
  });
  assert.deepEqual(workerFromEnv({ RANK: '0', WORLD_SIZE: '2' }), { rank: 0, worldSize: 2, localRank: 0, masterAddr: '127.0.0.1', masterPort: 29500 });
  assert.throws(() => workerFromEnv({ RANK: '2', WORLD_SIZE: '2' }), /RANK=2 is not below WORLD_SIZE=2/);
  assert.throws(
    () => workerFromEnv({ RANK: 'x', WORLD_SIZE: '2' }),
    (e: Error) => e instanceof DistConfigError && /RANK='x'/.test(e.message),
  );
  assert.throws(() => workerFromEnv({ RANK: '0', WORLD_SIZE: '2', MASTER_PORT: '70000' }), /MASTER_PORT=70000/);
});
