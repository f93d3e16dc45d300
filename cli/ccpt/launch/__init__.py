"""Launching training: the pure plan, node sessions over ssh or locally, logs, teardown, EC2.

`ccpt train` and `ccpt ec2` use this package; nothing here is imported when `ccpt --help` runs.
Only `local.py` and `ssh.py` start processes; `plan.py` is pure.
"""
