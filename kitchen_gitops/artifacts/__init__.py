"""Artifacts: verify models and adapters in storage against the catalog, lock their
digests, and list what an air-gapped environment needs carried in.

Modules: ``safetensors`` (header parser), ``digest`` (streamed hashing), ``storage``
(S3 and PVC mirrors), ``scan`` (one parallel pass over storage), ``coherence``
(adapter against base, base against catalog), ``verify``, ``lock`` and ``bundle``.
"""

from .scan import StorageOptions
from .verify import VerifyResult, verify_artifacts

__all__ = ["StorageOptions", "VerifyResult", "verify_artifacts"]
