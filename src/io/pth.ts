// PyTorch `.pth` checkpoints (torch.save / torch.load zip format) in pure TypeScript.
//
// Why not libtorch's pickle_load: libtorch 1.13 cannot read OrderedDict state
// dicts (model.state_dict()), one-item dicts (SETITEM) or nn.Parameter values
// (see shared/reference/libtorch-binding-notes.md §2). This module reads and
// writes the format itself and never depends on the native addon.
//
// File layout (torch >= 1.6, "zip" serialization):
//   <archive>/data.pkl      pickle (protocol 2) of the object; tensors appear as
//                           _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)
//                           where `storage` is a persistent id ('storage', torch.FloatStorage, key, location, numel)
//   <archive>/data/<key>    raw little-endian bytes of storage <key> (numel * itemsize)
//   <archive>/byteorder     "little" (torch >= 2.1 writes it; absent means little)
//   <archive>/version       "3\n"
// <archive> is any name (Python uses the file stem); records are stored
// uncompressed with data aligned to 64 bytes.
//
// Loading is data-only: globals are checked against an allow-list and nothing
// is executed (see pickle.ts).
//
// The parts: tensor.ts (the value types), pth-read.ts, pth-write.ts, strided.ts (views of a
// storage), pickle.ts and zip.ts (the two container formats), files.ts (whole-file reads, atomic writes).
export { DTYPE_ITEMSIZE, PyFloat, rawTensor, type DType, type PyValue, type RawTensor } from './tensor.js';
export { decodePth, loadPth } from './pth-read.js';
export { encodePth, savePth } from './pth-write.js';
export { writeFileAtomic } from './files.js';
