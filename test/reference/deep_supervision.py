"""The UNet of --depth / --base-channels and nnU-Net's deep-supervision loss, in PyTorch.

DeepUNet builds the reference's parts (reference.model) with `depth` down stages of widths base,
2 base, ... base x 2^depth; at depth 4 / base 64 it is the reference's UNet, key for key. The
loss follows nnU-Net v2: output i (0 = full resolution) weighted 1/2^i, the lowest resolution 0,
normalised to sum 1 (nnUNetTrainer._build_loss, DeepSupervisionWrapper); targets resized with
F.interpolate(mode='nearest-exact') (batchgeneratorsv2's DownsampleSegForDSTransform).
"""
import torch
import torch.nn.functional as F
from torch import nn

from reference.loss import criterion
from reference.model import DoubleConv, Down, OutConv, Up


class DeepUNet(nn.Module):
    def __init__(self, n_channels, n_classes, bilinear=False, depth=4, base=64):
        super().__init__()
        self.depth, self.n_classes = depth, n_classes
        f = 2 if bilinear else 1
        w = [base * 2 ** i for i in range(depth + 1)]
        self.inc = DoubleConv(n_channels, w[0])
        for i in range(1, depth + 1):
            setattr(self, f'down{i}', Down(w[i - 1], w[i] // f if i == depth else w[i]))
        for j in range(1, depth + 1):
            level = depth - j
            setattr(self, f'up{j}', Up(w[level + 1], w[0] if level == 0 else w[level] // f, bilinear))
        self.outc = OutConv(w[0], n_classes)
        # the decoder's output channels per level (0 = full resolution)
        self.decoder_widths = [w[0]] + [w[level] // f for level in range(1, depth)]

    def decode(self, x):
        """Decoder outputs, full resolution first."""
        skips = [self.inc(x)]
        for i in range(1, self.depth + 1):
            skips.append(getattr(self, f'down{i}')(skips[-1]))
        y = skips.pop()
        outs = []
        for j in range(1, self.depth + 1):
            y = getattr(self, f'up{j}')(y, skips.pop())
            outs.insert(0, y)
        return outs

    def forward(self, x):
        return self.outc(self.decode(x)[0])


class AuxHeads(nn.Module):
    """1x1 heads aux{i} on the decoder output at 1/2^i, i = 1 .. depth - 2 (the lowest has weight 0)."""

    def __init__(self, unet):
        super().__init__()
        self.count = unet.depth - 2
        for i in range(1, unet.depth - 1):
            setattr(self, f'aux{i}', nn.Conv2d(unet.decoder_widths[i], unet.n_classes, kernel_size=1))

    def outputs(self, unet, x):
        d = unet.decode(x)
        return [unet.outc(d[0])] + [getattr(self, f'aux{i}')(d[i]) for i in range(1, self.count + 1)]


def ds_weights(n):
    w = [1 / 2 ** i for i in range(n)]
    w[-1] = 0
    s = sum(w)
    return [x / s for x in w]


def downsample(target, size):
    """[N,H,W] class indices at `size`, nearest-exact as nnU-Net's DownsampleSegForDSTransform."""
    if tuple(target.shape[1:]) == tuple(size):
        return target
    return F.interpolate(target[:, None].float(), size=tuple(size), mode='nearest-exact')[:, 0].long()


def ds_loss(outputs, target, depth, n_classes):
    weights = ds_weights(depth)
    terms = [weights[i] * criterion(o, downsample(target, o.shape[2:]), n_classes) for i, o in enumerate(outputs) if weights[i] != 0]
    return sum(terms)
