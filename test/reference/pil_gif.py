"""Pillow side of test/data.gif.test.ts: GIFs written by Pillow, and what Pillow reads back.

`pil_gif.py write DIR` writes a set of GIFs into DIR (palette images, interlaced or not, with a
transparent index, several frames, a full 256-colour table, greyscale and quantised RGB inputs);
`pil_gif.py read FILE...` reads GIFs written by the test. For each GIF `f`, it saves
`f.npy` = np.asarray(Image.open(f)) (palette indices for "P" images: how Pytorch-UNet reads masks)
and `f.rgb.npy` = np.asarray(Image.open(f).convert("RGB")).
stdout (last line): [{"file": ..., "mode": "P", "frames": 1}, ...]
"""
import json
import os
import sys

import numpy as np
from PIL import Image


def palette_image(indices, palette):
    im = Image.fromarray(indices.astype(np.uint8), mode="P")
    im.putpalette([v for rgb in palette for v in rgb])
    return im


def read_back(path):
    back = Image.open(path)
    np.save(path + ".npy", np.asarray(back))
    np.save(path + ".rgb.npy", np.asarray(Image.open(path).convert("RGB")))
    return {"file": path, "mode": back.mode, "frames": getattr(back, "n_frames", 1)}


def write(out):
    rng = np.random.RandomState(0)
    pal16 = [tuple(int(v) for v in rng.randint(0, 256, 3)) for _ in range(16)]
    pal256 = [tuple(int(v) for v in rng.randint(0, 256, 3)) for _ in range(256)]
    blobs = (np.add.outer(np.arange(48) // 6, np.arange(64) // 8) % 16)  # runs: long LZW strings
    cases = {}
    cases["interlaced"] = (palette_image(rng.randint(0, 16, (48, 64)), pal16), {})  # Pillow interlaces by default
    cases["not_interlaced"] = (palette_image(blobs, pal16), {"interlace": False})
    cases["tiny_13x7"] = (palette_image(rng.randint(0, 16, (7, 13)), pal16), {})
    cases["transparent"] = (palette_image(blobs, pal16), {"transparency": 3})
    cases["mask_01"] = (palette_image((np.add.outer(np.arange(40), np.arange(57)) % 23 < 9), [(0, 0, 0), (255, 255, 255)]), {})
    cases["colours_256"] = (palette_image(rng.randint(0, 256, (200, 301)), pal256), {})  # 8-bit codes, table resets
    cases["grey_L"] = (Image.fromarray((np.add.outer(np.arange(33), np.arange(50)) * 3 % 256).astype(np.uint8), mode="L"), {})
    cases["rgb"] = (Image.fromarray(rng.randint(0, 256, (30, 41, 3)).astype(np.uint8), mode="RGB"), {})
    frames = [palette_image(np.roll(blobs, k, axis=1), pal16) for k in range(3)]
    cases["three_frames"] = (frames[0], {"save_all": True, "append_images": frames[1:], "duration": 100, "loop": 0})
    info = []
    for name, (im, kw) in cases.items():
        path = os.path.join(out, name + ".gif")
        im.save(path, **kw)
        info.append(read_back(path))
    return info


def main():
    if sys.argv[1] == "write":
        info = write(sys.argv[2])
    else:
        info = [read_back(f) for f in sys.argv[2:]]
    print(json.dumps(info))


if __name__ == "__main__":
    main()
