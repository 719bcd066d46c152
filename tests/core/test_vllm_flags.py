"""vLLM arguments stay structured until the edge, and read back as vLLM's parser reads them."""

from __future__ import annotations

from kitchen_gitops.vllm_args import VllmArgs


def test_argv_writes_each_kind_of_option() -> None:
    args = VllmArgs((("--model", "/m"), ("--enable-lora", None), ("--lora-modules", ("a", "b"))),
                    ("--enable-prefix-caching",))
    assert args.argv() == ["--model=/m", "--enable-lora", "--lora-modules", "a", "b", "--enable-prefix-caching"]


def test_flags_read_extra_args_as_vllm_does() -> None:
    args = VllmArgs((("--max-loras", "4"), ("--trust-remote-code", None)),
                    ("--max_loras", "8", "--swap-space=4", "--max-lora-rank", "64", "--seed", "-1",
                     "--max-lora-rank=128", "--trust_remote_code"))
    flags = args.flags()
    assert flags["--max-loras"] == "8"  # underscore form, value as the next token, last one wins
    assert flags["--swap-space"] == "4"
    assert flags["--max-lora-rank"] == "128"
    assert flags["--seed"] == "-1"  # a negative number is a value, not a flag
    assert flags["--trust-remote-code"] is None
    assert "--max_loras" not in flags
