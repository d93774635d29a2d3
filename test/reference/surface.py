"""scipy side of test/metrics.surface.test.ts: HD95 and normalised surface Dice per class.

MONAI's 2-D definitions written with scipy (Debian python3-scipy): boundary = mask XOR
binary_erosion(mask) (default cross, outside = background), distances from
distance_transform_edt(~other_boundary, sampling=spacing) read at this mask's boundary, HD95 = max
of the two directions' 95th percentiles (numpy's linear interpolation), NSD = boundary pixels within
tol over all boundary pixels. Empty masks as src/metrics/surface.ts documents: both empty -> HD95 0,
NSD 1; one empty -> HD95 NaN (null in the JSON), NSD 0. Truth labels outside 0..K-1 are ignored:
they take the predicted class and their boundary pixels are not counted.

stdin: {"cases": [{"h": H, "w": W, "k": K, "pred": [...], "truth": [...], "spacing": [sy, sx], "tol": t}]}
stdout (last line): [[{"hd95": x or null, "nsd": y}, ... per class], ... per case]
"""
import json
import sys

import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt


def edges(mask):
    return mask ^ binary_erosion(mask)


def score(pred, truth, valid, spacing, tol):
    if not pred.any() and not truth.any():
        return {"hd95": 0.0, "nsd": 1.0}
    if not pred.any() or not truth.any():
        return {"hd95": None, "nsd": 0.0}
    ep, et = edges(pred), edges(truth)
    d_pt = distance_transform_edt(~et, sampling=spacing)[ep & valid]
    d_tp = distance_transform_edt(~ep, sampling=spacing)[et & valid]
    total = d_pt.size + d_tp.size
    if total == 0:
        return {"hd95": 0.0, "nsd": 1.0}
    hd = max([float(np.percentile(d, 95)) for d in (d_pt, d_tp) if d.size > 0])
    nsd = (int(np.sum(d_pt <= tol)) + int(np.sum(d_tp <= tol))) / total
    return {"hd95": hd, "nsd": nsd}


def main():
    out = []
    for c in json.load(sys.stdin)["cases"]:
        shape = (c["h"], c["w"])
        pred = np.array(c["pred"], dtype=np.int64).reshape(shape)
        truth = np.array(c["truth"], dtype=np.int64).reshape(shape)
        valid = (truth >= 0) & (truth < c["k"])
        truth = np.where(valid, truth, pred)
        out.append([score(pred == k, truth == k, valid, c["spacing"], c["tol"]) for k in range(c["k"])])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
