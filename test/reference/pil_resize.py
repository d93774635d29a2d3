"""Pillow side of test/data.resize.test.ts: the reference loader's image resize.

Pytorch-UNet's BasicDataset.preprocess does `pil_img.resize((newW, newH), resample=Image.BICUBIC)`
on `Image.open(path)` and then `np.asarray`. This script does exactly that for each job and saves
the array as .npy, so the test compares our decoded + resized pixels with PIL's byte for byte.

stdin: {"jobs": [{"file": "in.png", "size": [w, h], "out": "out.npy", "convert": "L"}, ...]}
("convert" is optional: Image.convert(mode) first, as a loader that forces grey or RGB would.)
stdout (last line): [{"mode": "L", "dtype": "uint8", "shape": [h, w]}, ...] (PIL's mode as opened)
"""
import json
import sys

import numpy as np
from PIL import Image


def main():
    jobs = json.load(sys.stdin)["jobs"]
    info = []
    for job in jobs:
        im = Image.open(job["file"])
        if job.get("convert"):
            im = im.convert(job["convert"])
        arr = np.asarray(im.resize(tuple(job["size"]), resample=Image.BICUBIC))
        np.save(job["out"], arr)
        info.append({"mode": im.mode, "dtype": str(arr.dtype), "shape": list(arr.shape)})
    print(json.dumps(info))


if __name__ == "__main__":
    main()
