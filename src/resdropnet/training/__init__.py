"""Training on Lightning: config, data module, augmentation, LightningModule, fit."""
