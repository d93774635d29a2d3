/** Full assembly of the U-Net (milesial/Pytorch-UNet unet_model.py). */
import type { Tensor } from '../engine/index.js';
import { Module } from '../nn/index.js';
import { DoubleConv, Down, OutConv, Up } from './parts.js';

export interface UNetArgs {
  nChannels: number; // 1 grayscale, 3 RGB
  nClasses: number; // 1 = binary (sigmoid), >= 2 softmax over classes incl. background
  bilinear: boolean; // bilinear upsampling instead of transposed convolutions
}

export class UNet extends Module {
  readonly args: UNetArgs;
  readonly inc: DoubleConv;
  readonly down1: Down;
  readonly down2: Down;
  readonly down3: Down;
  readonly down4: Down;
  readonly up1: Up;
  readonly up2: Up;
  readonly up3: Up;
  readonly up4: Up;
  readonly outc: OutConv;

  /**
   * widthDivisor narrows every layer (64-128-256-512-1024 divided by it); 1 is the reference
   * architecture. Only long-running tests use another value, so it is not part of UNetArgs.
   */
  constructor(args: UNetArgs, widthDivisor = 1) {
    super();
    this.args = { ...args };
    const { nChannels, nClasses, bilinear } = args;
    const factor = bilinear ? 2 : 1;
    const [c1, c2, c3, c4, c5] = [64, 128, 256, 512, 1024].map((c) => c / widthDivisor);
    this.inc = this.child('inc', new DoubleConv(nChannels, c1));
    this.down1 = this.child('down1', new Down(c1, c2));
    this.down2 = this.child('down2', new Down(c2, c3));
    this.down3 = this.child('down3', new Down(c3, c4));
    this.down4 = this.child('down4', new Down(c4, c5 / factor));
    this.up1 = this.child('up1', new Up(c5, c4 / factor, bilinear));
    this.up2 = this.child('up2', new Up(c4, c3 / factor, bilinear));
    this.up3 = this.child('up3', new Up(c3, c2 / factor, bilinear));
    this.up4 = this.child('up4', new Up(c2, c1, bilinear));
    this.outc = this.child('outc', new OutConv(c1, nClasses));
  }

  /** x: [N, nChannels, H, W] float -> logits [N, nClasses, H, W] (no activation). */
  forward(x: Tensor): Tensor {
    const x1 = this.inc.forward(x);
    const x2 = this.down1.forward(x1);
    const x3 = this.down2.forward(x2);
    const x4 = this.down3.forward(x3);
    const x5 = this.down4.forward(x4);
    let y = this.up1.forward(x5, x4);
    y = this.up2.forward(y, x3);
    y = this.up3.forward(y, x2);
    y = this.up4.forward(y, x1);
    return this.outc.forward(y);
  }
}
