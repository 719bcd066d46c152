"""Conformance: prove after a rollout that the GPUs are right and every flavor is served,
answers, stays isolated and meets the environment's SLOs.

``expectations`` is what the render stage writes next to the Job; ``readiness``,
``serving`` and ``perf`` check InferenceServices against it; ``gpu`` checks the node's
GPUs through NVML; ``report`` turns the results into text, JSON and JUnit XML.
"""
