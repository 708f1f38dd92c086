"""Florence-2's DaViT vision tower rewritten channels-last, with the checkpoint's own modules.

transformers keeps the tower in NCHW between blocks and turns to tokens ([B, H*W, C])
around every depthwise convolution: `flatten(2).transpose(1, 2)` and back. LiteRT
runs convolutions in NHWC, so each of those turns became two TRANSPOSE ops around
each convolution (base: 4 per convolution, ~1.2 GB of copies per image). Here the
activations stay [B, H, W, C] (tokens are a free view of it); the only permutes left
are the ones each convolution's NCHW -> NHWC lowering cancels.
"""

from __future__ import annotations

from torch import nn


def _conv_nhwc(conv: nn.Conv2d, x):
    return conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def _patch_embed(embed, x):
    if embed.pre_norm:
        x = embed.norm(x)
    x = _conv_nhwc(embed.conv, x)
    return x if embed.pre_norm else embed.norm(x)


def _mixing_block(block, attend, x):
    """One DaViT half-block on [B, H, W, C]: conv + attention, conv + MLP, each with its residual.

    `attend` maps the normed tokens [B, H*W, C] to the attention output; spatial and channel
    blocks differ only there.
    """
    b, h, w, c = x.shape
    x = x + _conv_nhwc(block.conv1, x)
    tokens = x.reshape(b, h * w, c)
    tokens = tokens + attend(block.norm1(tokens))
    x = tokens.reshape(b, h, w, c)
    x = x + _conv_nhwc(block.conv2, x)
    tokens = x.reshape(b, h * w, c)
    return (tokens + block.ffn(block.norm2(tokens))).reshape(b, h, w, c)


def _davit_block(block, x):
    spatial, channel, shape = block.spatial_block, block.channel_block, x.shape
    x = _mixing_block(spatial, lambda tokens: spatial.window_attn(tokens.reshape(shape)), x)
    return _mixing_block(channel, channel.channel_attn, x)


class ChannelsLastVision(nn.Module):
    """pixel_values [B, 3, H, W] -> the tower's last hidden state [B, C, h, w], as `vision_tower` gives it.

    Eval only: drop-path is skipped (it is the identity in eval mode).
    """

    def __init__(self, tower):
        super().__init__()
        self.tower = tower

    def forward(self, pixel_values):
        x = pixel_values.permute(0, 2, 3, 1)
        for embed, blocks in zip(self.tower.convs, self.tower.blocks):
            x = _patch_embed(embed, x)
            for block in blocks:
                x = _davit_block(block, x)
        return x.permute(0, 3, 1, 2)
