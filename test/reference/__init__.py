"""The project's own PyTorch reference for golden values (run by Debian's /usr/bin/python3, torch 1.13).

Written for unet-ts from the description of milesial/Pytorch-UNet's trainer
(../shared/reference/milesial-and-peers.md): the UNet with its state_dict keys (model.py), the
criterion and Dice formulas (loss.py), evaluate.py's validation Dice (evaluate.py), the PIL data
path (data.py) and the training loop with its recipe and validation cadence (trainer.py).
Where unet-ts fixes a reference bug on purpose (binary evaluation, accumulation remainder), this
reference does what unet-ts does and says so. Tests import it as the package `reference`
(sys.path gets test/); the scripts run directly: python3 test/reference/trainer.py --help.
"""
