"""The vLLM metric names kitchen reads: one source for the recording rules, the alerts,
the dashboard and the autoscaling queries.

The names are those vLLM 0.32 exports (the tests check each against a live server's
``/metrics``).
"""

TTFT = "vllm:time_to_first_token_seconds"
TPOT = "vllm:request_time_per_output_token_seconds"  # per request, as `kitchen conform` measures TPOT
ITL = "vllm:inter_token_latency_seconds"
E2E = "vllm:e2e_request_latency_seconds"
QUEUE = "vllm:request_queue_time_seconds"
SUCCESS = "vllm:request_success_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"
KV_CACHE = "vllm:kv_cache_usage_perc"  # 0..1 (was vllm:gpu_cache_usage_perc before vLLM 0.10)
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
WAITING_BY_REASON = "vllm:num_requests_waiting_by_reason"  # reason="deferred": the LoRA budget among others
LORA_INFO = "vllm:lora_requests_info"
HTTP_REQUESTS = "http_requests_total"  # vLLM's API server (prometheus-fastapi-instrumentator)
VLLM_METRICS = (TTFT, TPOT, ITL, E2E, QUEUE, SUCCESS, GENERATION_TOKENS, KV_CACHE, RUNNING, WAITING,
                WAITING_BY_REASON, LORA_INFO, HTTP_REQUESTS)
