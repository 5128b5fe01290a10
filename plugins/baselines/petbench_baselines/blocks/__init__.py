"""Building blocks shared by the baselines: each exists once, here.

U-Net (pix2pix), 70x70 PatchGAN, ResNet block and generator (CycleGAN), convolutional vision
transformer blocks (CvT), the image pool and the GAN losses.
"""
from .cvt import ConvEmbed, ConvProjectionAttention, CvTBlock, CvTStage, TransposedCvTStage
from .gan_losses import gan_loss, set_requires_grad
from .image_pool import ImagePool
from .init import init_weights
from .norm import ConditionalNorm, apply_norm, make_norm
from .patchgan import PatchGAN
from .resnet import ResnetBlock, ResnetGenerator
from .unet import UNet

__all__ = [
    "ConditionalNorm", "ConvEmbed", "ConvProjectionAttention", "CvTBlock", "CvTStage", "ImagePool", "PatchGAN",
    "ResnetBlock", "ResnetGenerator", "TransposedCvTStage", "UNet", "apply_norm", "gan_loss", "init_weights",
    "make_norm", "set_requires_grad",
]
