/** Parts of the U-Net model (names and state_dict keys as milesial/Pytorch-UNet's unet_parts.py). */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { BatchNorm2d, Conv2d, ConvTranspose2d, MaxPool2d, Module, ReLU, Sequential, Upsample } from '../nn/index.js';

/** (convolution => [BN] => ReLU) * 2 */
export class DoubleConv extends Module {
  readonly double_conv: Sequential;
  constructor(inChannels: number, outChannels: number, midChannels = outChannels) {
    super();
    this.double_conv = this.child(
      'double_conv',
      new Sequential(
        new Conv2d(inChannels, midChannels, 3, { padding: 1, bias: false }),
        new BatchNorm2d(midChannels),
        new ReLU(),
        new Conv2d(midChannels, outChannels, 3, { padding: 1, bias: false }),
        new BatchNorm2d(outChannels),
        new ReLU(),
      ),
    );
  }
  forward(x: Tensor): Tensor {
    return this.double_conv.forward(x);
  }
}

/** Downscaling with maxpool then double conv */
export class Down extends Module {
  readonly maxpool_conv: Sequential;
  constructor(inChannels: number, outChannels: number) {
    super();
    this.maxpool_conv = this.child('maxpool_conv', new Sequential(new MaxPool2d(2), new DoubleConv(inChannels, outChannels)));
  }
  forward(x: Tensor): Tensor {
    return this.maxpool_conv.forward(x);
  }
}

/** Upscaling then double conv; the upsampled map is padded to the skip's size so any input size works. */
export class Up extends Module {
  readonly up: ConvTranspose2d | Upsample;
  readonly conv: DoubleConv;
  constructor(inChannels: number, outChannels: number, bilinear: boolean) {
    super();
    if (bilinear) {
      this.up = this.child('up', new Upsample(2, true));
      this.conv = this.child('conv', new DoubleConv(inChannels, outChannels, Math.floor(inChannels / 2)));
    } else {
      this.up = this.child('up', new ConvTranspose2d(inChannels, Math.floor(inChannels / 2), 2, 2));
      this.conv = this.child('conv', new DoubleConv(inChannels, outChannels));
    }
  }
  /** x1: [N,Cin,h,w] from below; x2: [N,Cskip,H,W] skip connection. */
  forward(x1: Tensor, x2: Tensor): Tensor {
    let up = this.up.forward(x1);
    const diffY = x2.size(2) - up.size(2);
    const diffX = x2.size(3) - up.size(3);
    if (diffX !== 0 || diffY !== 0) {
      up = E.pad(up, [Math.floor(diffX / 2), diffX - Math.floor(diffX / 2), Math.floor(diffY / 2), diffY - Math.floor(diffY / 2)]);
    }
    return this.conv.forward(E.cat([x2, up], 1));
  }
}

/** 1x1 convolution to class logits. */
export class OutConv extends Module {
  readonly conv: Conv2d;
  constructor(inChannels: number, outChannels: number) {
    super();
    this.conv = this.child('conv', new Conv2d(inChannels, outChannels, 1));
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(x);
  }
}
