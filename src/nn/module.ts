/** Module: named parameters, buffers and children, with PyTorch's state_dict naming and order. */
import { UserError } from '../config/errors.js';
import * as E from '../engine/index.js';
import type { Device, DType, Tensor } from '../engine/index.js';

export type StateDict = Map<string, Tensor>;

export interface LoadReport {
  missing: string[];
  unexpected: string[];
  mismatched: { key: string; expected: number[]; got: number[] }[];
}

export class StateDictError extends UserError {
  constructor(
    message: string,
    readonly report: LoadReport,
  ) {
    super(message);
  }
}

export abstract class Module {
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();

  protected param(name: string, t: Tensor): Tensor {
    t.keep().requiresGrad_(true);
    this._params.set(name, t);
    return t;
  }
  protected buffer(name: string, t: Tensor): Tensor {
    t.keep();
    this._buffers.set(name, t);
    return t;
  }
  protected child<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }
  /** Current value of an own buffer (buffers can be replaced by to()). */
  protected buf(name: string): Tensor {
    const t = this._buffers.get(name);
    if (!t) throw new Error(`no buffer ${name}`);
    return t;
  }

  /** Parameters in PyTorch's order: own first, then each child's, recursively. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this._params) out.push([prefix + n, p]);
    for (const [n, c] of this._children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }
  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, b] of this._buffers) out.push([prefix + n, b]);
    for (const [n, c] of this._children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }
  modules(): Module[] {
    return [this, ...[...this._children.values()].flatMap((c) => c.modules())];
  }
  numParameters(): number {
    return this.parameters().reduce((s, p) => s + p.numel, 0);
  }

  /** Same keys and order as torch.nn.Module.state_dict(): per module, params, buffers, then children. */
  stateDict(prefix = ''): StateDict {
    const out: StateDict = new Map();
    for (const [n, p] of this._params) out.set(prefix + n, p);
    for (const [n, b] of this._buffers) out.set(prefix + n, b);
    for (const [n, c] of this._children) for (const [k, v] of c.stateDict(`${prefix}${n}.`)) out.set(k, v);
    return out;
  }

  /**
   * Copies values into the module's tensors (converting dtype/device). Strict by default: any
   * missing, unexpected or mis-shaped key is an error listing all of them.
   */
  loadStateDict(sd: Map<string, Tensor>, strict = true): LoadReport {
    const own = this.stateDict();
    const report: LoadReport = { missing: [], unexpected: [], mismatched: [] };
    for (const k of own.keys()) if (!sd.has(k)) report.missing.push(k);
    for (const k of sd.keys()) if (!own.has(k)) report.unexpected.push(k);
    for (const [k, v] of sd) {
      const t = own.get(k);
      if (t && !sameShape(t.shape, v.shape)) report.mismatched.push({ key: k, expected: t.shape, got: v.shape });
    }
    const bad = report.mismatched.length > 0 || (strict && (report.missing.length > 0 || report.unexpected.length > 0));
    if (bad) throw new StateDictError(describe(report), report);
    E.noGrad(() =>
      E.tidy(() => {
        for (const [k, v] of sd) {
          const t = own.get(k);
          if (t) t.copy_(v.to({ device: t.device, dtype: t.dtype }));
        }
      }),
    );
    return report;
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /**
   * Moves/converts parameters in place (identity kept, like module.to()) and buffers.
   * dtype applies to floating tensors only; memoryFormat to 4-d tensors only.
   */
  to(o: { device?: Device | string; dtype?: DType; memoryFormat?: 'channels_last' | 'contiguous' }): this {
    E.noGrad(() => {
      for (const m of this.modules()) {
        for (const [n, p] of m._params) {
          const moved = convert(p, o);
          if (moved !== p) {
            p.setData(moved);
            moved.dispose();
          }
          m._params.set(n, p);
        }
        for (const [n, b] of m._buffers) {
          const moved = convert(b, o);
          if (moved !== b) {
            b.setData(moved);
            moved.dispose();
          }
          m._buffers.set(n, b);
        }
      }
    });
    return this;
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const [, t] of this.stateDict()) t.dispose();
  }
}

const isFloat = (d: DType) => d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';

function convert(t: Tensor, o: { device?: Device | string; dtype?: DType; memoryFormat?: 'channels_last' | 'contiguous' }): Tensor {
  const dtype = o.dtype && isFloat(t.dtype) ? o.dtype : undefined;
  const needDevice = o.device !== undefined && o.device !== t.device && !(o.device === 'cuda' && t.device === 'cuda:0');
  let out = t;
  if (needDevice || (dtype && dtype !== t.dtype)) out = t.to({ device: needDevice ? o.device : undefined, dtype });
  if (o.memoryFormat && t.ndim === 4 && !out.isContiguous(o.memoryFormat)) {
    const next = out.contiguous(o.memoryFormat);
    if (out !== t) out.dispose();
    out = next;
  }
  return out;
}

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

function describe(r: LoadReport): string {
  const lines = ['the weights do not fit this model:'];
  const list = (xs: string[]) => xs.slice(0, 8).join(', ') + (xs.length > 8 ? `, ... (${xs.length} in all)` : '');
  if (r.missing.length) lines.push(`  missing keys: ${list(r.missing)}`);
  if (r.unexpected.length) lines.push(`  unexpected keys: ${list(r.unexpected)}`);
  for (const m of r.mismatched.slice(0, 8)) lines.push(`  ${m.key}: checkpoint has shape [${m.got}], model expects [${m.expected}]`);
  return lines.join('\n');
}
