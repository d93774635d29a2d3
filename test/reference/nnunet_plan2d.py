"""nnU-Net v2's 2D planning, transcribed by us from reading MIC-DKFZ/nnUNet
(experiment_planners/default_experiment_planner.py: ExperimentPlanner.get_plans_for_configuration;
experiment_planners/network_topology.py: get_pool_and_conv_props, pad_shape) and
MIC-DKFZ/dynamic-network-architectures (PlainConvUNet.compute_conv_feature_map_size: encoder
StackedConvBlocks, UNetDecoder without deep supervision, the planner builds the net that way).
Spacing is 1 for 2D images. numpy only; no nnU-Net import.

stdin: JSON list of {"median": [h, w], "n": images, "classes": K, "gb": vram target}
stdout: JSON list of {"patch": [h, w], "batch": b, "num_pool": [ph, pw], "stages": s}
"""
import json
import sys
from copy import deepcopy

import numpy as np

BASE_FEATURES = 32
MAX_FEATURES_2D = 512
REF_VAL_2D = 85000000
REF_GB = 8
REF_BS_2D = 12
MIN_BS = 2
MAX_DATASET_COVERED = 0.05
MIN_EDGE = 4


def pad_shape(shape, must_be_divisible_by):
    new_shp = [shape[i] + must_be_divisible_by[i] - shape[i] % must_be_divisible_by[i] for i in range(len(shape))]
    for i in range(len(shape)):
        if shape[i] % must_be_divisible_by[i] == 0:
            new_shp[i] -= must_be_divisible_by[i]
    return np.array(new_shp).astype(int)


def get_pool_and_conv_props(spacing, patch_size, min_feature_map_size, max_numpool):
    dim = len(spacing)
    current_spacing = deepcopy(list(spacing))
    current_size = deepcopy(list(patch_size))
    pool_op_kernel_sizes = [[1] * dim]
    num_pool_per_axis = [0] * dim
    while True:
        valid = [i for i in range(dim) if current_size[i] >= 2 * min_feature_map_size]
        if len(valid) < 1:
            break
        min_spacing_of_valid = min(current_spacing[i] for i in valid)
        valid = [i for i in valid if current_spacing[i] / min_spacing_of_valid < 2]
        valid = [i for i in valid if num_pool_per_axis[i] < max_numpool]
        if len(valid) == 1 and current_size[valid[0]] < 3 * min_feature_map_size:
            break
        if len(valid) < 1:
            break
        pool = [1] * dim
        for v in valid:
            pool[v] = 2
            num_pool_per_axis[v] += 1
            current_spacing[v] *= 2
            current_size[v] = np.ceil(current_size[v] / 2)
        pool_op_kernel_sizes.append(pool)
    must_be_divisible_by = 2 ** np.array(num_pool_per_axis)
    patch_size = pad_shape(patch_size, must_be_divisible_by)
    return num_pool_per_axis, pool_op_kernel_sizes, patch_size, must_be_divisible_by


def feature_map_size(patch_size, strides, features, num_classes):
    # encoder: each stage's StackedConvBlocks (2 convs) at the size after its stride
    out = np.int64(0)
    size = list(patch_size)
    sizes = []
    for s in strides:
        size = [i // j for i, j in zip(size, s)]
        sizes.append(size)
        out += 2 * np.prod([features[len(sizes) - 1], *size], dtype=np.int64)
    # decoder: skip sizes of all but the bottleneck; per stage 2 convs + transposed conv; seg at the top
    skips = sizes[:-1]
    for s in range(len(skips)):
        k = len(skips) - 1 - s
        out += 3 * np.prod([features[k], *skips[k]], dtype=np.int64)
        if s == len(skips) - 1:
            out += np.prod([num_classes, *skips[k]], dtype=np.int64)
    return out


def plan(median_shape, n_images, num_classes, gb):
    spacing = [1.0, 1.0]
    median_shape = np.array(median_shape, dtype=float)
    tmp = 1 / np.array(spacing)
    initial = [round(i) for i in tmp * (2048 ** 2 / np.prod(tmp)) ** (1 / 2)]
    initial = np.array([min(i, j) for i, j in zip(initial, median_shape)])
    num_pool, strides, patch_size, divisible = get_pool_and_conv_props(spacing, initial, MIN_EDGE, 999999)

    def features(n):
        return tuple(min(MAX_FEATURES_2D, BASE_FEATURES * 2 ** i) for i in range(n))

    estimate = feature_map_size(patch_size, strides, features(len(strides)), num_classes)
    reference = REF_VAL_2D * (gb / REF_GB)
    while (estimate / REF_BS_2D * 2) > reference:
        axis = np.argsort([i / j for i, j in zip(patch_size, median_shape)])[-1]
        patch_size = list(patch_size)
        t = deepcopy(patch_size)
        t[axis] -= divisible[axis]
        _, _, _, divisible = get_pool_and_conv_props(spacing, t, MIN_EDGE, 999999)
        patch_size[axis] -= divisible[axis]
        num_pool, strides, patch_size, divisible = get_pool_and_conv_props(spacing, patch_size, MIN_EDGE, 999999)
        estimate = feature_map_size(patch_size, strides, features(len(strides)), num_classes)
    batch_size = round((reference / estimate) * REF_BS_2D)
    n_voxels = float(np.prod(median_shape, dtype=np.float64) * n_images)
    bs_5_percent = round(n_voxels * MAX_DATASET_COVERED / np.prod(patch_size, dtype=np.float64))
    batch_size = max(min(batch_size, bs_5_percent), MIN_BS)
    return {"patch": [int(i) for i in patch_size], "batch": int(batch_size), "num_pool": [int(i) for i in num_pool], "stages": len(strides)}


if __name__ == "__main__":
    cases = json.load(sys.stdin)
    json.dump([plan(c["median"], c["n"], c["classes"], c.get("gb", 8)) for c in cases], sys.stdout)
