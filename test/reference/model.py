"""UNet of milesial/Pytorch-UNet: same layers, same state_dict keys, both upsampling variants.

width_divisor narrows every layer (64..1024 divided by it) as unet-ts's UNet(args, divisor) does
for fast tests; 1 is the reference architecture.
"""
import torch
import torch.nn.functional as F
from torch import nn


def _conv_bn_relu(cin, cout):
    return [nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DoubleConv(nn.Module):
    """(3x3 conv, BN, ReLU) twice; keys double_conv.{0,1,3,4}."""

    def __init__(self, cin, cout, mid=None):
        super().__init__()
        mid = cout if mid is None else mid
        self.double_conv = nn.Sequential(*_conv_bn_relu(cin, mid), *_conv_bn_relu(mid, cout))

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, cin, cout, bilinear):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)
            self.conv = DoubleConv(cin, cout, cin // 2)
        else:
            self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(cin, cout)

    def forward(self, below, skip):
        below = self.up(below)
        dy = skip.shape[2] - below.shape[2]
        dx = skip.shape[3] - below.shape[3]
        # pad order: left, right, top, bottom (odd sizes put the extra pixel right/bottom)
        below = F.pad(below, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, below], dim=1))


class OutConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes, bilinear=False, width_divisor=1):
        super().__init__()
        self.n_channels, self.n_classes, self.bilinear = n_channels, n_classes, bilinear
        f = 2 if bilinear else 1
        c1, c2, c3, c4, c5 = (w // width_divisor for w in (64, 128, 256, 512, 1024))
        self.inc = DoubleConv(n_channels, c1)
        self.down1, self.down2, self.down3 = Down(c1, c2), Down(c2, c3), Down(c3, c4)
        self.down4 = Down(c4, c5 // f)
        self.up1 = Up(c5, c4 // f, bilinear)
        self.up2 = Up(c4, c3 // f, bilinear)
        self.up3 = Up(c3, c2 // f, bilinear)
        self.up4 = Up(c2, c1, bilinear)
        self.outc = OutConv(c1, n_classes)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        y = self.up1(self.down4(x4), x4)
        y = self.up2(y, x3)
        y = self.up3(y, x2)
        return self.outc(self.up4(y, x1))
