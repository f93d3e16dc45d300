"""The specialist team: roster (agent files), prompts, the Claude client, history, and the router.

Nothing here imports the `anthropic` SDK at module level; `ccpt --help` stays fast.
"""
