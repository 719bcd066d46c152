"""The typed catalog, by stage: field types (catalog_fields), the kinds a tenant edits
(catalog_kinds), environments (environment), the loaded catalog with its positions
(catalog) and the cross references that build it (crossref).  The names other stages
use are here too."""

from __future__ import annotations

from .catalog import Catalog, PositionError
from .catalog_fields import (
    CONFORMANCE_NAMESPACE,
    IMAGE_DIGEST,
    LLMISVC_CONTROLLER_FLAGS,
    MAX_COUNT,
    S3_BUCKET,
    VLLM_LORA_RANKS,
    Strict,
    service_namespace,
)
from .catalog_kinds import Architecture, Base, Expectation, Flavor, Tenant
from .crossref import load_catalog, output_prefix, read_dataset
from .environment import Environment, Gpu

__all__ = [
    "CONFORMANCE_NAMESPACE", "IMAGE_DIGEST", "LLMISVC_CONTROLLER_FLAGS", "MAX_COUNT", "S3_BUCKET",
    "VLLM_LORA_RANKS", "Architecture", "Base", "Catalog", "Environment", "Expectation", "Flavor", "Gpu",
    "PositionError", "Strict", "Tenant", "load_catalog", "output_prefix", "read_dataset", "service_namespace",
]
