"""Conformance reports: text, JSON and JUnit read the same results; exit codes 0/1/2."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from kitchen_gitops.conform.report import describe_measurements
from kitchen_gitops.conform.results import CheckRecord, ConformReport, Status, finding
from kitchen_gitops.findings import Location, ResourceRef, Severity
from kitchen_gitops.report import REPORTERS

REF = ResourceRef("InferenceService", "tiny", "ns", "serving.kserve.io/v1beta1")


def report(*statuses: Status) -> ConformReport:
    rep = ConformReport("serving", "dev")
    for i, st in enumerate(statuses):
        r = CheckRecord("smoke", f"ns/tiny:f{i}")
        if st is Status.FAIL:
            r.add(finding("smoke", f"flavor f{i}: bad answer", location=Location("catalog/f.yaml", 4, 5),
                          resource=REF, expected="contains 'Paris'", actual="Lyon", flavor=f"f{i}"))
        elif st is Status.ERROR:
            r.could_not_run(finding("smoke", "does not answer", location=Location("x"), resource=REF))
        elif st is Status.WARN:
            r.add(finding("smoke", "meh", location=Location("x"), resource=REF, severity=Severity.WARNING))
        else:
            r.status = st
        rep.records.append(r)
    return describe_measurements(rep)


def test_exit_codes() -> None:
    assert report(Status.PASS, Status.WARN, Status.SKIP).exit_code == 0
    assert report(Status.PASS, Status.FAIL).exit_code == 1
    assert report(Status.PASS, Status.ERROR).exit_code == 2
    assert report(Status.FAIL, Status.ERROR).exit_code == 1  # a proven failure wins
    assert ConformReport("serving", "dev").exit_code == 2    # nothing checked


def test_text_names_check_flavor_expected_and_actual() -> None:
    out = REPORTERS["text"](report(Status.PASS, Status.FAIL))
    assert out.splitlines()[0] == "kitchen conform serving: environment dev: FAIL (exit 1)"
    assert ("catalog/f.yaml:4:5: [error] flavor f1: bad answer; expected contains 'Paris'; got 'Lyon' "
            "[env dev, InferenceService ns/tiny, model/f1] (conform.smoke)") in out
    assert out.rstrip().endswith("1 passed, 1 failed, 0 could not run, 0 skipped, 0 warning(s) in 0.0s")


def test_json_carries_flavor_and_actual() -> None:
    doc = json.loads(REPORTERS["json"](report(Status.FAIL)))
    (f,) = doc["checks"][0]["findings"]
    assert (f["rule_id"], f["object"], f["expected"], f["actual"], f["environment"]) == (
        "conform.smoke", "model/f0", "contains 'Paris'", "Lyon", "dev")
    assert f["resource"]["kind"] == "InferenceService" and doc["exit_code"] == 1


def test_junit_counts_and_messages() -> None:
    root = ET.fromstring(REPORTERS["junit"](report(Status.PASS, Status.FAIL, Status.ERROR, Status.SKIP)))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "4", "1", "1", "1")
    (suite,) = root
    assert suite.get("name") == "dev/ns/tiny"
    failure = suite.find("testcase/failure")
    assert failure is not None and failure.get("type") == "conform.smoke"
    assert failure.get("message") == "flavor f1: bad answer"
    assert "expected contains 'Paris'" in (failure.text or "")
