"""The storage egress names its destination: the S3 service's namespace in the cluster,
the environment's address blocks outside it, on the port the endpoint is reached by."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from kitchen_gitops import pipeline
from kitchen_gitops.model import service_namespace
from tests.policy.policy_cases import PARTS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("endpoint", "use_https", "expected"), [
    ("minio.minio-prod.svc:9000", True, ("minio-prod", 9000)),
    ("minio.minio-prod.svc", True, ("minio-prod", 443)),
    ("minio.minio-prod.svc", False, ("minio-prod", 80)),
    ("http://minio.minio-prod.svc", True, ("minio-prod", 80)),  # the scheme decides, not use_https
    ("https://s3.example.com/", False, ("", 443)),
    ("s3.example.com:8443", True, ("", 8443)),
])
def test_port_follows_the_scheme(endpoint: str, use_https: bool, expected: tuple[str, int]) -> None:
    assert service_namespace(endpoint, use_https) == expected


def _repo(tmp_path: Path, old: str, new: str) -> Path:
    root = tmp_path / "repo"
    for part in PARTS:
        shutil.copytree(REPO / part, root / part)
    env = root / "environments" / "prod.yaml"
    text = env.read_text(encoding="utf-8")
    assert text.count(old) == 1
    env.write_text(text.replace(old, new), encoding="utf-8")
    return root


def test_external_endpoint_egress_goes_to_its_address_blocks(tmp_path: Path) -> None:
    root = _repo(tmp_path, "endpoint: minio.minio-prod.svc:9000",
                 "endpoint: s3.osaka.storage.example.com\n    egress_cidrs: [10.20.0.0/16, 'fd00:1::/64']")
    outcome = pipeline.render(root, ["prod"])
    assert outcome.ok, [f.format_text() for f in outcome.findings]
    policy = next(f for f in outcome.rendered["prod"] if f.path == "cs-llm/networkpolicy-allow-egress.yaml")
    storage = yaml.safe_load(policy.content)["spec"]["egress"][1]
    assert storage == {"ports": [{"protocol": "TCP", "port": 443}],
                       "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}, {"ipBlock": {"cidr": "fd00:1::/64"}}]}


@pytest.mark.parametrize("cidr", ["10.20.0.1/16", "everything", "10.0.0.0/33", "''"])
def test_an_address_block_that_is_none_is_refused_at_its_line(tmp_path: Path, cidr: str) -> None:
    root = _repo(tmp_path, "endpoint: minio.minio-prod.svc:9000",
                 f"endpoint: s3.osaka.storage.example.com\n    egress_cidrs: [{cidr}]")
    outcome = pipeline.validate(root)
    errors = [f for f in outcome.findings if f.severity.value == "error"]
    assert len(errors) == 1
    assert errors[0].location.file == "environments/prod.yaml"
    assert errors[0].location.line == 35
    assert "address block" in errors[0].message
