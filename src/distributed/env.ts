/**
 * Who this process is in a data-parallel run: read from the environment torchrun, Slurm wrappers,
 * Kubernetes operators and our own launcher set (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
 * MASTER_PORT). Global rank = node_rank · nproc_per_node + local_rank, as torchrun.
 */
import { UserError } from '../config/errors.js';

export interface WorkerEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  masterAddr: string;
  masterPort: number;
}

export const DEFAULT_MASTER_PORT = 29500;

/** A bad torchrun/Slurm environment variable (RANK, WORLD_SIZE, ...). */
export class DistConfigError extends UserError {}

function int(env: NodeJS.ProcessEnv, name: string, min: number): number {
  const raw = env[name] ?? '';
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < min) throw new DistConfigError(`environment variable ${name}='${raw}' must be an integer >= ${min} (set by torchrun/Slurm for each worker)`);
  return v;
}

/** The worker described by the environment, or null when RANK/WORLD_SIZE are not both set. */
export function workerFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv | null {
  if (env.RANK === undefined || env.WORLD_SIZE === undefined) return null;
  const worldSize = int(env, 'WORLD_SIZE', 1);
  const rank = int(env, 'RANK', 0);
  if (rank >= worldSize) throw new DistConfigError(`RANK=${rank} is not below WORLD_SIZE=${worldSize}`);
  const localRank = env.LOCAL_RANK === undefined ? 0 : int(env, 'LOCAL_RANK', 0);
  const masterAddr = env.MASTER_ADDR || '127.0.0.1';
  const masterPort = env.MASTER_PORT === undefined ? DEFAULT_MASTER_PORT : int(env, 'MASTER_PORT', 1);
  if (masterPort > 65535) throw new DistConfigError(`MASTER_PORT=${masterPort} is not a TCP port`);
  return { rank, worldSize, localRank, masterAddr, masterPort };
}
