/** Data-parallel training: launcher, worker environment, process-group context, sharding. */
export { DistConfigError, DEFAULT_MASTER_PORT, type WorkerEnv, workerFromEnv } from './env.js';
export { DistContext, DistError, type JoinOptions, pickBackend } from './context.js';
export { COMMAND_START_ENV, LAUNCHED_ENV, type LaunchOptions, exitWithLauncher, launch } from './launcher.js';
export { shardForEpoch, strided } from './sampler.js';
