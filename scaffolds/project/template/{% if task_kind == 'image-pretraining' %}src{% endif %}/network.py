"""The masked autoencoder (MAE): a vision transformer that learns features from unlabelled images
by restoring the patches hidden from it.

Training hides `mask_ratio` of each image's patches (75%: MAE's choice) at random. The encoder, a
ViT, reads only the visible patches; a lighter decoder gets their encodings back in place, a shared
mask token at every hidden place, and predicts the hidden patches' pixels. The loss is the mean
squared error over the hidden patches alone (with `norm_pix_loss`, against each patch normalised
by its own mean and spread, which MAE found gives better features).

What the encoder learned is measured by a linear probe (probe.py) on its features of whole,
unmasked images: the mean of its outputs over the patches. No label reaches pre-training.

The model takes (pixels, labels) and returns (outputs, loss), the interface the trainer, the
predictor and the server rely on: in evaluation the outputs are the features, for the probe; in
training they are None (the labels are never read).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from config import Config, ProjectError
from data import ImagePreprocessor

EVAL_MASK_SEED = 0  # evaluation hides the same patches every time, so its losses compare


def sincos_positions(grid: int, width: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position encodings [grid * grid, width] (MAE's): half of the width
    encodes the row, half the column, each as sines and cosines of geometric frequencies."""
    quarter = width // 4
    frequencies = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    rows, columns = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    parts = []
    for coordinate in (rows, columns):
        angles = coordinate.reshape(-1, 1).float() * frequencies
        parts += [angles.sin(), angles.cos()]
    encoding = torch.cat(parts, dim=1)
    return F.pad(encoding, (0, width - encoding.shape[1]))  # a width not divisible by 4: zeros


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values in one matmul
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # every patch sees every other: no mask
        return self.proj(y.transpose(1, 2).reshape(batch, tokens, width))


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MaskedAutoencoder(nn.Module):
    def __init__(
        self,
        *,
        image_size: int,
        patch_size: int,
        channels: int,
        n_embd: int,
        n_layer: int,
        n_head: int,
        decoder_embd: int,
        decoder_layer: int,
        decoder_head: int,
        mask_ratio: float,
        norm_pix_loss: bool,
    ):
        super().__init__()
        self.patch_size, self.channels, self.grid = patch_size, channels, image_size // patch_size
        self.mask_ratio, self.norm_pix_loss = mask_ratio, norm_pix_loss
        patch_values = patch_size * patch_size * channels
        self.patch_embedding = nn.Linear(patch_values, n_embd)  # a patch-sized convolution, as a matmul
        self.register_buffer("positions", sincos_positions(self.grid, n_embd), persistent=False)
        self.encoder = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.encoder_norm = nn.LayerNorm(n_embd)

        self.decoder_embedding = nn.Linear(n_embd, decoder_embd)
        self.mask_token = nn.Parameter(torch.zeros(decoder_embd))
        self.register_buffer("decoder_positions", sincos_positions(self.grid, decoder_embd), persistent=False)
        self.decoder = nn.ModuleList(Block(decoder_embd, decoder_head) for _ in range(decoder_layer))
        self.decoder_norm = nn.LayerNorm(decoder_embd)
        self.to_pixels = nn.Linear(decoder_embd, patch_values)

        self.apply(self.init_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    @staticmethod
    def init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):  # MAE's: Xavier-uniform weights, zero biases
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    @property
    def patches(self) -> int:
        return self.grid * self.grid

    # Patches <-> images ---------------------------------------------------------------

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B, patches, p * p * C], patches in row-major order."""
        batch, p, g = images.shape[0], self.patch_size, self.grid
        x = images.reshape(batch, self.channels, g, p, g, p)
        return x.permute(0, 2, 4, 3, 5, 1).reshape(batch, g * g, p * p * self.channels)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """The inverse of patchify."""
        batch, p, g = patches.shape[0], self.patch_size, self.grid
        x = patches.reshape(batch, g, g, p, p, self.channels)
        return x.permute(0, 5, 1, 3, 2, 4).reshape(batch, self.channels, g * p, g * p)

    # Masking, encoding, decoding ---------------------------------------------------------

    def visible_count(self, mask_ratio: float | None = None) -> int:
        """Patches the encoder sees: at least one."""
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        return max(1, round(self.patches * (1 - ratio)))

    def random_order(
        self, batch: int, device: torch.device, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Each image's patch indices in a random order [B, patches]: the first ones stay visible."""
        return torch.rand(batch, self.patches, generator=generator, device=device).argsort(dim=1)

    def encode(self, images: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
        """Encodings [B, k, n_embd] of the `visible` patch indices [B, k] (default: all patches)."""
        x = self.patch_embedding(self.patchify(images)) + self.positions
        if visible is not None:
            x = x.gather(1, visible.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        for block in self.encoder:
            x = block(x)
        return self.encoder_norm(x)

    def decode(self, encoded: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """Predicted pixels of every patch [B, patches, p * p * C] from the visible ones' encodings."""
        x = self.decoder_embedding(encoded)
        batch, width = x.shape[0], x.shape[-1]
        full = self.mask_token.to(x.dtype).expand(batch, self.patches, width).clone()
        full.scatter_(1, visible.unsqueeze(-1).expand(-1, -1, width), x)  # encodings back in place
        full = full + self.decoder_positions
        for block in self.decoder:
            full = block(full)
        return self.to_pixels(self.decoder_norm(full))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """What the linear probe (and any downstream task) reads: the mean encoding of the whole image."""
        return self.encode(images).mean(dim=1)

    def targets(self, images: torch.Tensor) -> torch.Tensor:
        patches = self.patchify(images)
        if not self.norm_pix_loss:
            return patches
        mean, var = patches.mean(dim=-1, keepdim=True), patches.var(dim=-1, keepdim=True)
        return (patches - mean) / (var + 1e-6).sqrt()

    def reconstruct(
        self, images: torch.Tensor, mask_ratio: float | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(predicted patches [B, patches, p * p * C], hidden [B, patches] True where hidden, loss):
        the loss is the mean squared error over the hidden patches."""
        order = self.random_order(images.shape[0], images.device, generator)
        keep = self.visible_count(mask_ratio)
        visible = order[:, :keep]
        predicted = self.decode(self.encode(images, visible), visible)
        hidden = torch.ones(images.shape[0], self.patches, dtype=torch.bool, device=images.device)
        hidden.scatter_(1, visible, False)
        error = (predicted.float() - self.targets(images).float()).pow(2).mean(dim=-1)
        loss = (error * hidden).sum() / hidden.sum().clamp(min=1)
        return predicted, hidden, loss

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """(features or None, loss). Evaluation hides the same patches on every call
        (EVAL_MASK_SEED), so its losses compare, and returns the whole image's features for the
        probe; training returns no features (they would cost a second pass of the encoder)."""
        if self.training:
            return None, self.reconstruct(images)[2]
        generator = torch.Generator(device=images.device).manual_seed(EVAL_MASK_SEED)
        return self.features(images), self.reconstruct(images, generator=generator)[2]


def build_model(config: Config, preprocessor: ImagePreprocessor, load_weights: bool = True) -> nn.Module:
    """The masked autoencoder for these images. Its weights always start random (`load_weights`
    exists for the interface the other task kinds share)."""
    if config.model_name:
        raise ProjectError(
            f"model_name={config.model_name!r}: pre-training builds its own encoder from the settings"
            " (patch_size, n_embd, n_layer, n_head); leave model_name empty"
        )
    return MaskedAutoencoder(
        image_size=preprocessor.image_size,
        patch_size=config.patch_size,
        channels=preprocessor.channels,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        decoder_embd=config.decoder_embd,
        decoder_layer=config.decoder_layer,
        decoder_head=config.decoder_head,
        mask_ratio=config.mask_ratio,
        norm_pix_loss=config.norm_pix_loss,
    )


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def encoder_parameters(model: MaskedAutoencoder) -> int:
    """Parameters of the part downstream tasks keep: the patch embedding and the encoder."""
    parts = (model.patch_embedding, model.encoder, model.encoder_norm)
    return sum(p.numel() for part in parts for p in part.parameters())
