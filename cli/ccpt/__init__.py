"""ccpt: Claude Code PyTorch.

Scaffold PyTorch + Hugging Face projects from INVEST/CRPG task specs, consult a team of
Claude specialists, and launch torchrun from one GPU to many EC2 nodes.
"""

__version__ = "0.1.0"
