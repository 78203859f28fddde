"""Joining paths of local and remote (gs://, s3://, ...) filesystems without touching them."""
from __future__ import annotations

import os
import posixpath


def is_remote(path: str) -> bool:
    return "://" in path


def join_path(base: str, *parts: str) -> str:
    """``base/part/...``: POSIX joins for URLs (gs://bucket/x), the OS's for local paths.

    Unlike ``FileSystems.join`` this needs no filesystem plug-in, so a Dataflow graph can be built
    offline, without the GCP extras installed.
    """
    if is_remote(base):
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)
