/**
 * A narrow UNet for long-running tests: the same parts (DoubleConv, Down, Up, OutConv), the same
 * child names and state_dict keys and the same forward as src/model/unet.ts, with the channel
 * widths divided by `div` (16 by default: 4-8-16-32-64 instead of 64-128-256-512-1024). A training
 * step at 32x32 then takes milliseconds instead of half a second on two cores, so thousands of
 * steps fit in a test. Typed as a UNet so train() and the predictor accept it.
 */
import type { Tensor } from '../../src/engine/index.js';
import type { UNet, UNetArgs } from '../../src/model/index.js';
import { DoubleConv, Down, OutConv, Up } from '../../src/model/parts.js';
import { Module } from '../../src/nn/index.js';

export class TinyUNet extends Module {
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

  constructor(args: UNetArgs, div = 16) {
    super();
    this.args = { ...args };
    const { nChannels, nClasses, bilinear } = args;
    const f = bilinear ? 2 : 1;
    const w = [64, 128, 256, 512, 1024].map((c) => c / div);
    this.inc = this.child('inc', new DoubleConv(nChannels, w[0]));
    this.down1 = this.child('down1', new Down(w[0], w[1]));
    this.down2 = this.child('down2', new Down(w[1], w[2]));
    this.down3 = this.child('down3', new Down(w[2], w[3]));
    this.down4 = this.child('down4', new Down(w[3], w[4] / f));
    this.up1 = this.child('up1', new Up(w[4], w[3] / f, bilinear));
    this.up2 = this.child('up2', new Up(w[3], w[2] / f, bilinear));
    this.up3 = this.child('up3', new Up(w[2], w[1] / f, bilinear));
    this.up4 = this.child('up4', new Up(w[1], w[0], bilinear));
    this.outc = this.child('outc', new OutConv(w[0], nClasses));
  }

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

/** `createModel` hook for train(): a TinyUNet typed as the UNet train() expects. */
export const tinyUNet = (args: UNetArgs, div = 16): UNet => new TinyUNet(args, div) as unknown as UNet;
