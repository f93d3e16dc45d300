"""A trained run's masked autoencoder on one image at a time (for `runner.py predict`, the server,
and the latency that `runner.py check` measures): it hides patches of the image, restores them,
and says what a linear probe reads from the features of the whole image.

The probe is fitted on the validation images' features (the labelled subset) the first time a
run's model is asked, and kept beside it as probe.pt for the next time.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from config import ProjectError
from data import UNLABELLED, build_data
from image_files import open_image, png_base64, refuse_too_many_pixels
from probe import LinearProbe, fit_probe, load_or_fit
from trainer import TrainedModel

HIDDEN_GREY = 0.5  # hidden patches are shown this grey (0: black, 1: white)
PROBE_IMAGES = 10_000  # the probe is fitted on at most this many labelled validation images


class Predictor(TrainedModel):
    def __init__(self, run_dir: Path, device: str = "auto") -> None:
        super().__init__(run_dir, device)
        path = run_dir / "probe.pt"
        self.probe = load_or_fit(path, self.step, self.fit_probe) if self.preprocessor.labels else None

    @torch.no_grad()
    def fit_probe(self) -> LinearProbe | None:
        """A probe fitted on the features of the labelled validation images (None without two)."""
        val = build_data(self.config, self.run_dir).val
        labelled = [index for index in range(len(val)) if val.source.label(index) != UNLABELLED][
            :PROBE_IMAGES
        ]
        if len(labelled) < 2:
            return None
        features = []
        for start in range(0, len(labelled), 256):
            pixels = torch.stack([val[index][0] for index in labelled[start : start + 256]]).to(self.device)
            features.append(self.model.features(pixels).float().cpu())
        labels = torch.tensor([val.source.label(index) for index in labelled])
        return fit_probe(torch.cat(features), labels, len(self.preprocessor.labels))

    @torch.no_grad()
    def predict(
        self, image: Image.Image, mask_ratio: float | None = None, seed: int = 0, top_k: int = 5
    ) -> dict[str, object]:
        """Hide `mask_ratio` of the patches (default: the run's) in the order `seed` draws, restore
        them, and return the three images as base64 PNGs at the model's input size (the image as the
        model sees it, with the hidden patches grey, and restored), the reconstruction's error on
        the hidden patches, and the probe's top-k labels when the run has labels."""
        if mask_ratio is not None and not 0 < mask_ratio < 1:
            raise ProjectError(f"mask_ratio must be between 0 and 1 (both left out), got {mask_ratio}")
        refuse_too_many_pixels(image, "the image")
        model, preprocessor = self.model, self.preprocessor
        pixels = preprocessor(image).unsqueeze(0).to(self.device)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        predicted, hidden, loss = model.reconstruct(pixels, mask_ratio, generator)
        patches = model.patchify(pixels)
        if model.norm_pix_loss:  # predictions are in each patch's own units: back to pixels
            mean, var = patches.mean(dim=-1, keepdim=True), patches.var(dim=-1, keepdim=True)
            predicted = predicted * (var + 1e-6).sqrt() + mean
        grey = torch.full_like(patches, (HIDDEN_GREY - preprocessor.mean) / preprocessor.std)
        shown_hidden = hidden.unsqueeze(-1)
        masked = model.unpatchify(torch.where(shown_hidden, grey, patches))[0]
        restored = model.unpatchify(torch.where(shown_hidden, predicted.to(patches.dtype), patches))[0]
        result: dict[str, object] = {
            "reconstruction_error": round(float(loss), 6),
            "hidden_patches": int(hidden.sum()),
            "patches": model.patches,
            "patch_size": model.patch_size,
            "image_size": preprocessor.image_size,
            "image_png": png_base64(preprocessor.to_image(pixels[0])),
            "masked_png": png_base64(preprocessor.to_image(masked)),
            "reconstruction_png": png_base64(preprocessor.to_image(restored)),
        }
        if self.probe is not None:
            probabilities = self.probe.logits(model.features(pixels)).softmax(dim=-1)[0].cpu()
            top = probabilities.topk(min(top_k, len(preprocessor.labels)))
            result["top"] = [
                {"label": preprocessor.labels[i], "probability": round(p, 6)}
                for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
            ]
            result["label"] = result["top"][0]["label"]
        return result

    def read_input(self, argument: str) -> Image.Image:
        """A command-line argument (an image file's path) as an image."""
        return open_image(argument)

    def sample_inputs(self, count: int) -> list[Image.Image]:
        """Validation images, for timing predictions and for the playground's examples."""
        val = build_data(self.config, self.run_dir).val
        return [val.image(i % len(val)) for i in range(count)]
