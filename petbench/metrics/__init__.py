"""The formulas behind the built-in metrics, one convention per module (docs/metrics.md):

``ssim`` (windowed SSIM as scikit-image computes it, volume or per slice), ``challenge`` (the UDPET
challenge's global metrics, and the S3PET paper's whole-volume NMSE), ``group`` (the S3PET group's
public evaluation script), ``regions`` (region and lesion quantitation from label maps).
The metrics themselves are registered by ``petbench.default_plugins``.
"""
