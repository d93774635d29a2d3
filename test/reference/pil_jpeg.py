"""Writes the JPEGs of test/data.resize.test.ts with Pillow (libjpeg-turbo), in the variants real
datasets have: baseline with 4:2:0 / 4:4:4 chroma, progressive, optimised Huffman tables, greyscale, odd sizes.

stdin: {"dir": "...", "seed": 0, "jobs": [{"name": "a.jpg", "size": [w, h], "mode": "RGB",
         "quality": 90, "subsampling": 2, "progressive": false, "optimize": false}, ...]}
"""
import json
import sys

import numpy as np
from PIL import Image


def main():
    spec = json.load(sys.stdin)
    rng = np.random.default_rng(spec["seed"])
    for job in spec["jobs"]:
        w, h = job["size"]
        y, x = np.mgrid[0:h, 0:w]
        c = 3 if job["mode"] == "RGB" else 1
        # Smooth gradients, noise and a hard edge: every IDCT and upsampling path has work to do.
        planes = [np.sin(x / (7.0 + k)) * 90 + 128 + rng.normal(0, 25, (h, w)) * (y < h // 2) + 60 * ((x + k) % 9 < 4) for k in range(c)]
        arr = np.stack(planes, -1).clip(0, 255).astype(np.uint8)
        im = Image.fromarray(arr[..., 0] if c == 1 else arr, job["mode"])
        im.save(f'{spec["dir"]}/{job["name"]}', quality=job.get("quality", 90), subsampling=job.get("subsampling", 2),
                progressive=job.get("progressive", False), optimize=job.get("optimize", False))


if __name__ == "__main__":
    main()
