/**
 * `unet env`: what a bug report needs. Works without the addon (then says how to build it), so it
 * imports the engine only inside a try.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface EnvReport {
  unetTs: string;
  node: string;
  platform: string;
  addon: { path: string; built: boolean; error?: string };
  libtorch: { version?: string; source?: string; lib?: string; cxx11Abi?: string; cudaBuild?: boolean };
  cuda: { available: boolean; runtime?: string; cudnn?: string; devices: string[] };
  blas: { builtWith?: string; loaded: string[] };
  threads: { intraOp?: number; backend?: string; UNET_THREADS?: string; OMP_NUM_THREADS?: string };
  sharp: { sharp?: string; libvips?: string; error?: string };
  distributed: Record<'gloo' | 'nccl' | 'mpi', boolean | null>;
}

/** The dynamic symbol names of an ELF64 shared library (its .dynstr section), or null. */
export function dynamicStrings(file: string): Buffer | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const h = Buffer.alloc(64);
    readSync(fd, h, 0, 64, 0);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return null; // ELF, 64-bit, little-endian
    const shoff = Number(h.readBigUInt64LE(0x28));
    const es = h.readUInt16LE(0x3a);
    const sh = Buffer.alloc(es * h.readUInt16LE(0x3c));
    readSync(fd, sh, 0, sh.length, shoff);
    for (let i = 0; i * es < sh.length; i++) {
      if (sh.readUInt32LE(i * es + 4) !== 11) continue; // SHT_DYNSYM; sh_link is its string table
      const s = sh.readUInt32LE(i * es + 40) * es;
      const out = Buffer.alloc(Number(sh.readBigUInt64LE(s + 32)));
      readSync(fd, out, 0, out.length, Number(sh.readBigUInt64LE(s + 24)));
      return out;
    }
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Which c10d process groups the libtorch has (null: its libraries could not be read). */
function distributedBackends(lib: string | undefined): EnvReport['distributed'] {
  const cpu = lib ? dynamicStrings(join(lib, 'libtorch_cpu.so')) : null;
  const cuda = lib ? dynamicStrings(join(lib, 'libtorch_cuda.so')) : null;
  const has = (name: string) => (cpu === null ? null : cpu.includes(name) || (cuda?.includes(name) ?? false));
  return { gloo: has('ProcessGroupGloo'), nccl: has('ProcessGroupNCCL'), mpi: has('ProcessGroupMPI') };
}

export async function collectEnv(): Promise<EnvReport> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const addonPath = join(root, 'build', 'unet_torch.node');
  const r: EnvReport = {
    unetTs: pkg.version,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    addon: { path: addonPath, built: existsSync(addonPath) },
    libtorch: {},
    cuda: { available: false, devices: ['cpu'] },
    blas: { loaded: [] },
    threads: { UNET_THREADS: process.env.UNET_THREADS, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS },
    sharp: {},
    distributed: { gloo: null, nccl: null, mpi: null },
  };
  try {
    const info = JSON.parse(readFileSync(join(root, 'build', 'libtorch.json'), 'utf8')) as { source: string; lib: string; abi: string; cuda: boolean };
    Object.assign(r.libtorch, { source: info.source, lib: info.lib, cxx11Abi: info.abi, cudaBuild: info.cuda });
  } catch {
    // not built yet: the addon line says how
  }
  try {
    const E = await import('../engine/index.js');
    const b = E.buildInfo();
    r.libtorch.version = b.torch;
    r.cuda.available = E.cudaIsAvailable();
    r.cuda.runtime = /CUDA Runtime ([\d.]+)/.exec(b.config)?.[1];
    r.cuda.cudnn = /CuDNN ([\d.]+)/.exec(b.config)?.[1];
    r.blas.builtWith = /BLAS_INFO=([^,\s]+)/.exec(b.config)?.[1];
    r.threads.intraOp = E.getNumThreads();
    r.threads.backend = /ATen parallel backend: (.+)/.exec(b.parallel)?.[1]?.trim();
    if (r.cuda.available) {
      const smi = spawnSync('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader'], { encoding: 'utf8', timeout: 5000 });
      const names = smi.status === 0 ? smi.stdout.trim().split('\n') : [];
      for (let i = 0; i < E.cudaDeviceCount(); i++) r.cuda.devices.push(`cuda:${i}${names[i] ? ` (${names[i].trim()})` : ''}`);
    }
  } catch (e) {
    r.addon.error = (e as Error).message;
  }
  // The BLAS actually mapped into this process (Debian's libblas.so.3 is whichever alternative is set).
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8');
    const libs = new Set(
      maps
        .split('\n')
        .map((l) => l.slice(l.indexOf('/')))
        .filter((p) => p.startsWith('/') && /blas|lapack|mkl_|libmkl/i.test(p)),
    );
    r.blas.loaded = [...libs].map((p) => (existsSync(p) ? realpathSync(p) : p));
  } catch {
    // not Linux
  }
  try {
    const sharp = (await import('sharp')).default;
    r.sharp = { sharp: sharp.versions.sharp, libvips: sharp.versions.vips };
  } catch (e) {
    r.sharp.error = (e as Error).message.split('\n')[0];
  }
  r.distributed = distributedBackends(r.libtorch.lib);
  return r;
}

const yesNo = (v: boolean | null) => (v === null ? 'unknown' : v ? 'yes' : 'no');

export function formatEnv(r: EnvReport): string {
  const t = r.libtorch;
  const row = (k: string, v: string) => `${k.padEnd(13)}${v}`;
  return [
    row('unet-ts', r.unetTs),
    row('Node.js', `${r.node} (${r.platform})`),
    row('addon', r.addon.built ? r.addon.path : `not built: ${r.addon.error ?? r.addon.path}`),
    row('libtorch', t.version ? `${t.version} from ${t.source ?? '?'}, ${t.lib ?? '?'}, CXX11 ABI ${t.cxx11Abi ?? '?'}` : t.source ? `not loaded (the addon was built against ${t.source}, ${t.lib})` : 'not loaded'),
    row('CUDA', r.cuda.available ? `available, runtime ${r.cuda.runtime ?? '?'}` : t.cudaBuild ? 'CUDA build, but no usable GPU' : 'no (CPU build)'),
    row('cuDNN', r.cuda.cudnn ?? 'no'),
    row('devices', r.cuda.devices.join(', ')),
    row('BLAS', `${r.blas.loaded.length ? r.blas.loaded.join(', ') : 'none loaded as a library'}${r.blas.builtWith ? ` (libtorch built with BLAS_INFO=${r.blas.builtWith})` : ''}`),
    row('threads', `${r.threads.intraOp ?? '?'} intra-op (${r.threads.backend ?? '?'}; UNET_THREADS=${r.threads.UNET_THREADS ?? 'unset'}, OMP_NUM_THREADS=${r.threads.OMP_NUM_THREADS ?? 'unset'})`),
    row('sharp', r.sharp.error ? `not loadable: ${r.sharp.error}` : `${r.sharp.sharp}, libvips ${r.sharp.libvips}`),
    row('distributed', `gloo ${yesNo(r.distributed.gloo)}, nccl ${yesNo(r.distributed.nccl)}, mpi ${yesNo(r.distributed.mpi)}`),
  ].join('\n');
}

export async function envCommand(o: { json?: boolean }): Promise<number> {
  const r = await collectEnv();
  console.log(o.json ? JSON.stringify(r) : formatEnv(r));
  return 0;
}
