"""The reference's data path (utils/data_loading.py) with PIL: files paired by stem, mask values
from every mask (sorted uniques; index = class), BICUBIC image / NEAREST mask resize to
int(scale*w) x int(scale*h), image / 255 when any value exceeds 1, [C,H,W] float32."""
import os

import numpy as np
import torch
from PIL import Image

EXTS = ('.png', '.jpg', '.jpeg', '.gif', '.tif', '.tiff', '.webp', '.npy')


def _open(path):
    return Image.fromarray(np.load(path)) if path.endswith('.npy') else Image.open(path)


def _stems(folder):
    return {os.path.splitext(f)[0]: os.path.join(folder, f) for f in os.listdir(folder)
            if not f.startswith('.') and f.lower().endswith(EXTS)}


def pairs(imgs_dir, masks_dir, mask_suffix=''):
    """[(id, image path, mask path)] sorted by id."""
    imgs, masks = _stems(imgs_dir), _stems(masks_dir)
    return [(i, imgs[i], masks[i + mask_suffix]) for i in sorted(imgs) if i + mask_suffix in masks]


def mask_values(mask_paths):
    uniq = []
    for p in mask_paths:
        a = np.asarray(_open(p))
        uniq.append(np.unique(a) if a.ndim == 2 else np.unique(a.reshape(-1, a.shape[-1]), axis=0))
    return sorted(np.unique(np.concatenate(uniq), axis=0).tolist())


def preprocess(values, img, scale, is_mask):
    w, h = img.size
    nw, nh = int(scale * w), int(scale * h)
    assert nw > 0 and nh > 0, 'scale is too small: resized images would have no pixel'
    img = img.resize((nw, nh), resample=Image.NEAREST if is_mask else Image.BICUBIC)
    a = np.asarray(img)
    if is_mask:
        out = np.zeros((nh, nw), dtype=np.int64)
        for i, v in enumerate(values):
            out[(a == v) if a.ndim == 2 else (a == v).all(-1)] = i
        return out
    a = a[np.newaxis, ...] if a.ndim == 2 else a.transpose((2, 0, 1))
    a = a.astype(np.float32)
    return a / 255.0 if (a > 1).any() else a


class Dataset:
    def __init__(self, imgs_dir, masks_dir, scale, mask_suffix='', values=None):
        self.items = pairs(imgs_dir, masks_dir, mask_suffix)
        if not self.items:
            raise RuntimeError(f'no image/mask pairs in {imgs_dir} and {masks_dir}')
        self.scale = scale
        self.mask_values = values if values is not None else mask_values([m for _, _, m in self.items])
        self.cache = {}

    def __len__(self):
        return len(self.items)

    def ids(self):
        return [i for i, _, _ in self.items]

    def __getitem__(self, k):
        if k not in self.cache:
            _, ip, mp = self.items[k]
            x = preprocess(self.mask_values, _open(ip), self.scale, False)
            y = preprocess(self.mask_values, _open(mp), self.scale, True)
            self.cache[k] = (torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y))
        return self.cache[k]

    def batches(self, indices, batch_size):
        """[(x [N,C,H,W], y [N,H,W])] in the given order; the last batch may be smaller."""
        out = []
        for s in range(0, len(indices), batch_size):
            xs, ys = zip(*(self[k] for k in indices[s:s + batch_size]))
            out.append((torch.stack(xs), torch.stack(ys)))
        return out
