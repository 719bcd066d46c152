#!/bin/bash
# The GPU run's stages, on an offline H200 host (see README.md).  Run from the repo root:
#
#   bash .gpu/tools/run_h200.sh BUDGET_S STAGE...
#
# stages: install build plan serve conform iso10 bench spare diag graphs (or: all = install..bench)
# Each stage runs once per machine (markers in /tmp/gpu-eval/done) and only if enough of
# BUDGET_S is left; results go to /tmp/gpu-eval/results and, at the end, to $OUT (if set)
# (summary.txt + results.tgz).  The server outlives the command (setsid), so a later command
# on the same warm machine continues with the stages left.
set -u
T0=$(date +%s)
BUDGET=${1:?budget seconds}; shift
REPO=$(pwd)
EVAL=$REPO/.gpu/tools
KIT=$REPO/.gpu/src   # the gpu branch's code (git archive), not the main checkout's
W=/tmp/gpu-eval
R=$W/results
mkdir -p $W/done $R
export PYTHONPATH=/tmp/site:$KIT
[ -f $W/extra_path ] && PYTHONPATH=$PYTHONPATH:$(cat $W/extra_path)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 PYTHONUNBUFFERED=1
export TOKENIZERS_PARALLELISM=false VLLM_USE_FLASHINFER_SAMPLER=0
URL=http://127.0.0.1:8080
BASE=llama-3-1-8b-instruct
kitchen() { python3 -P -m kitchen_gitops.cli "$@"; }
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $R/timeline.txt; }
# models on tmpfs when it has room (fast to write and to load), else on disk
if [ -f $W/models_dir ]; then M=$(cat $W/models_dir); else
  if [ "$(df -BG --output=avail /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9)" -ge 40 ] 2>/dev/null; then M=/dev/shm/models; else M=/tmp/models; fi
  echo $M > $W/models_dir; fi

stage() {  # stage NAME MIN_SECONDS_LEFT
  if [ -f $W/done/$1 ]; then log "stage $1: done before"; return 1; fi
  if [ "$(left)" -lt "$2" ]; then log "stage $1: skipped, $(left)s left < $2s"; return 1; fi
  log "stage $1: start"; return 0
}
done_() { touch $W/done/$1; log "stage $1: done"; }

do_install() {
  stage install 60 || return 0
  if [ ! -f /tmp/site/.ok ]; then
    rm -rf /tmp/site && mkdir -p /tmp/site
    mkdir -p /tmp/payload && cp .gpu/p2/site.tar.xz.* /tmp/payload/ && ls -1 /tmp/payload/site.tar.xz.* | tee -a $R/timeline.txt
    cat /tmp/payload/site.tar.xz.* | tee >(sha256sum > $R/payload.sha256) | python3 -c "
import sys, tarfile
tarfile.open(fileobj=sys.stdin.buffer, mode='r|xz').extractall('/tmp/site', filter='fully_trusted')" || { log "unpack failed"; return 1; }
    sleep 1; cat $R/payload.sha256 | tee -a $R/timeline.txt
    touch /tmp/site/.ok
  fi
  # a safety net of small lazily-imported vLLM requirements, used only if the minimal set fails (do_serve)
  [ -d /tmp/site-extra ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site-extra \
    .gpu/p2/extra/*.whl 2>&1 | tail -2
  python3 - <<'EOF' 2>&1 | grep -v "^INFO" | tee $R/versions.txt
import importlib.metadata as md, sys, torch
import vllm, vllm.entrypoints.openai.api_server, kitchen_gitops.cli
print("python", sys.version.split()[0], "torch", torch.__version__, "vllm", vllm.__version__)
for n in ("transformers", "tokenizers", "triton", "peft", "safetensors", "numpy", "anyio", "typing_extensions",
          "pydantic", "fastapi", "starlette", "uvicorn", "aiohttp", "httpx", "numba", "huggingface_hub", "typer"):
    try: print(" ", n, md.version(n))
    except Exception as e: print(" ", n, "?", e)
print("gpu", torch.cuda.get_device_name(0), "total_GiB", round(torch.cuda.mem_get_info()[1] / 2**30, 3),
      "free_GiB", round(torch.cuda.mem_get_info()[0] / 2**30, 3))
import vllm._C_stable_libtorch, vllm.vllm_flash_attn.flash_attn_interface as fa
print("FA3", fa.FA3_AVAILABLE, fa.FA3_UNAVAILABLE_REASON, "FA2", fa.FA2_AVAILABLE)
EOF
  grep -q "^FA3 True" $R/versions.txt || { log "vllm import check failed"; return 1; }
  done_ install
}

do_build() {
  stage build 200 || return 0
  df -h /dev/shm /tmp | tee -a $R/timeline.txt
  python3 $EVAL/build_model.py $M $KIT 2>&1 | grep -v "^INFO" | tee $R/build.txt || return 1
  mkdir -p /mnt && ln -sfn $M /mnt/models && ls -la /mnt/models/ /mnt/models/base | tee -a $R/build.txt
  done_ build
}

do_plan() {
  stage plan 150 || return 0
  rm -rf $W/catalog && cp -r $EVAL/example-catalog $W/catalog && cp -r $KIT/templates $W/catalog/
  MEM=$(python3 -c "import torch; print(round(torch.cuda.mem_get_info()[1] / 2**30, 3))")
  python3 -c "import torch; f, t = torch.cuda.mem_get_info(); print('cuda total bytes', t, 'GiB', t / 2**30)" | tee $R/cuda_memory.txt
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee -a $R/cuda_memory.txt
  sed -i "s/^    memory_gib: 141$/    memory_gib: 141\n    cuda_memory_gib: $MEM/" $W/catalog/environments/h200.yaml
  grep -n memory_gib $W/catalog/environments/h200.yaml | tee -a $R/timeline.txt
  kitchen plan --root $W/catalog --env h200 --format json > $R/plan.json; echo "plan rc=$?" >> $R/timeline.txt
  kitchen plan --root $EVAL/example-catalog --env h200 --format json > $R/plan-141GiB.json
  kitchen plan --root $W/catalog --env h200 > $R/plan.txt 2>&1
  kitchen render --root $W/catalog --env h200 > $R/render.txt 2>&1; echo "render rc=$?" >> $R/timeline.txt
  cp $W/catalog/rendered/h200/gpu-eval/inferenceservice-*.yaml $W/catalog/rendered/h200/gpu-eval/servingruntime-*.yaml $R/
  timeout 120 python3 -P -m kitchen_gitops.cli conform gpu --catalog $W/catalog --env h200 --json $R/conform-gpu.json \
    > $R/conform-gpu.txt 2>&1; echo "conform gpu rc=$?" | tee -a $R/timeline.txt; cat $R/conform-gpu.txt
  done_ plan
}

do_serve() {  # start the server exactly as rendered; wait until /v1/models answers
  stage serve 120 || return 0
  if [ ! -f $W/done/serve-started ]; then
    nvidia-smi --query-gpu=memory.used,memory.total --format=csv > $R/nvidia-smi-before.txt
    python3 $EVAL/serve.py start $W/catalog/rendered/h200 $R/vllm.log && touch $W/done/serve-started
    date +%s > $W/serve_t0
  fi
  python3 $EVAL/serve.py wait $R/vllm.log $(( $(left) - 30 )); rc=$?
  if [ $rc = 1 ] && grep -q "No module named" $R/vllm.log && [ ! -f $W/done/serve-extra ]; then
    log "a module is missing: $(grep -o "No module named '[^']*'" $R/vllm.log | sort -u | tr '\n' ' '); again with /tmp/site-extra"
    touch $W/done/serve-extra; echo /tmp/site-extra > $W/extra_path
    PYTHONPATH=$PYTHONPATH:/tmp/site-extra python3 $EVAL/serve.py start $W/catalog/rendered/h200 $R/vllm.log
    date +%s > $W/serve_t0
    python3 $EVAL/serve.py wait $R/vllm.log $(( $(left) - 30 )); rc=$?
  fi
  log "startup: $(( $(date +%s) - $(cat $W/serve_t0) ))s since start (wait rc=$rc)"
  [ $rc = 0 ] || return 1
  nvidia-smi --query-gpu=memory.used,memory.total --format=csv > $R/nvidia-smi-serving.txt
  python3 $EVAL/serve.py lines $R/vllm.log > $R/vllm_lines.txt; cat $R/vllm_lines.txt | cut -c1-300 | tail -40
  done_ serve
}

do_conform() {
  [ -f $W/done/serve ] || return 0
  stage conform 150 || return 0
  curl -s $URL/metrics > $R/metrics-before.txt
  timeout $(( $(left) - 20 )) python3 -P -m kitchen_gitops.cli conform serving --catalog $W/catalog --env h200 \
    --endpoint $URL --no-readiness --json $R/conform.json --junit $R/conform.xml > $R/conform.txt 2>&1
  echo "conform serving rc=$?" | tee -a $R/timeline.txt; cat $R/conform.txt | cut -c1-400
  done_ conform
}

do_conform2() {  # a second performance run on the same server: fresh prompts, no cache effect
  [ -f $W/done/serve ] || return 0
  stage conform2 60 || return 0
  timeout $(( $(left) - 10 )) python3 -P -m kitchen_gitops.cli conform serving --catalog $W/catalog --env h200 \
    --endpoint $URL --no-readiness --check performance --json $R/conform2.json > $R/conform2.txt 2>&1
  echo "conform performance again rc=$?" | tee -a $R/timeline.txt; cat $R/conform2.txt | cut -c1-400
  done_ conform2
}

do_iso10() {
  [ -f $W/done/serve ] || return 0
  stage iso10 60 || return 0
  timeout $(( $(left) - 10 )) python3 -P -m kitchen_gitops.cli conform serving --catalog $W/catalog --env h200 \
    --endpoint $URL --no-readiness --check isolation --check adapter-effect --isolation-rounds 10 \
    --json $R/conform-iso10.json > $R/conform-iso10.txt 2>&1
  echo "conform isolation x10 rc=$?" | tee -a $R/timeline.txt; cat $R/conform-iso10.txt | cut -c1-400
  done_ iso10
}

do_bench() {
  [ -f $W/done/serve ] || return 0
  stage bench 200 || return 0
  timeout $(( $(left) - 10 )) python3 $EVAL/compare_bench.py $URL $BASE $M/base $R/bench 16 128 128 512 3 2>&1 \
    | tee $R/bench.txt | grep -v "^INFO"
  curl -s $URL/metrics > $R/metrics-after.txt
  done_ bench
}

do_diag() {  # why kitchen's TTFT differs from vllm bench serve's: server-side means per run, and a greedy bench variant
  [ -f $W/done/serve ] || return 0
  stage diag 200 || return 0
  BENCH_VARIANTS='{"greedy": ["--temperature=0", "--extra-body={\"seed\":0}"]}' timeout $(( $(left) - 10 )) \
    python3 $EVAL/compare_bench.py $URL $BASE $M/base $R/bench-diag 16 128 128 48 2 2>&1 | tee $R/bench-diag.txt | grep -v "^INFO"
  done_ diag
}

do_bi() {  # the rendered server with VLLM_BATCH_INVARIANT=1: numeric flips and what it costs
  [ -f $W/done/serve ] || return 0
  stage bi 240 || return 0
  python3 $EVAL/serve.py stop
  VLLM_BATCH_INVARIANT=1 python3 $EVAL/serve.py start $W/catalog/rendered/h200 $R/vllm-bi.log
  python3 $EVAL/serve.py wait $R/vllm-bi.log $(( $(left) - 60 )) || return 1
  python3 $EVAL/serve.py lines $R/vllm-bi.log > $R/vllm-bi_lines.txt
  timeout $(( $(left) - 10 )) python3 -P -m kitchen_gitops.cli conform serving --catalog $W/catalog --env h200 \
    --endpoint $URL --no-readiness --check isolation --check adapter-effect --check performance --isolation-rounds 10 \
    --json $R/conform-bi.json > $R/conform-bi.txt 2>&1
  echo "conform batch-invariant rc=$?" | tee -a $R/timeline.txt; cat $R/conform-bi.txt | cut -c1-400
  done_ bi
}

do_spare() {  # the same server with a spare LoRA slot (--max-loras 5): isolation and adapter-effect again
  [ -f $W/done/serve ] || return 0
  stage spare 200 || return 0
  python3 $EVAL/serve.py stop
  python3 $EVAL/serve.py start $W/catalog/rendered/h200 $R/vllm-spare.log --max-loras=5 --max-cpu-loras=5
  python3 $EVAL/serve.py wait $R/vllm-spare.log $(( $(left) - 60 )) || return 1
  python3 $EVAL/serve.py lines $R/vllm-spare.log > $R/vllm-spare_lines.txt
  timeout $(( $(left) - 10 )) python3 -P -m kitchen_gitops.cli conform serving --catalog $W/catalog --env h200 \
    --endpoint $URL --no-readiness --check isolation --check adapter-effect --isolation-rounds 10 \
    --json $R/conform-spare.json > $R/conform-spare.txt 2>&1
  echo "conform spare slot rc=$?" | tee -a $R/timeline.txt; cat $R/conform-spare.txt | cut -c1-400
  done_ spare
}

do_graphs() {  # the CUDA-graph memory at other --max-num-seqs (GRAPH_SEQS, default "32 512"): the rendered
  # server of the plan stage's catalog with only max_num_seqs changed, started, asked once per adapter, stopped
  [ -f $W/done/plan ] || return 0
  stage graphs 200 || return 0
  python3 $EVAL/serve.py stop; rm -f $W/done/serve
  for n in ${GRAPH_SEQS:-32 512}; do
    [ "$(left)" -ge 150 ] || { log "graphs: max_num_seqs $n skipped, $(left)s left"; continue; }
    C=$W/catalog-seqs$n; rm -rf $C && cp -r $W/catalog $C && rm -rf $C/rendered
    sed -i "s/^    max_num_seqs: [0-9]*$/    max_num_seqs: $n/" $C/environments/h200.yaml
    kitchen plan --root $C --env h200 --format json > $R/plan-seqs$n.json
    kitchen render --root $C --env h200 > /dev/null 2>&1 || { log "graphs: render failed for $n"; continue; }
    t0=$(date +%s)
    python3 $EVAL/serve.py start $C/rendered/h200 $R/vllm-seqs$n.log
    python3 $EVAL/serve.py wait $R/vllm-seqs$n.log $(( $(left) - 20 )); rc=$?
    log "graphs: max_num_seqs $n ready rc=$rc after $(( $(date +%s) - t0 ))s"
    if [ $rc = 0 ]; then
      nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader > $R/nvidia-smi-seqs$n.txt
      for m in $(python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['h200']['tenants'][0]['services'][0]; print(' '.join(a['name'] for a in s['adapters']))" $R/plan-seqs$n.json); do
        curl -s $URL/v1/completions -H 'Content-Type: application/json' \
          -d "{\"model\":\"$m\",\"prompt\":\"Hello\",\"max_tokens\":4,\"temperature\":0}" | cut -c1-200; echo
      done > $R/adapters-seqs$n.txt
    fi
    python3 $EVAL/serve.py stop
    { echo "== max_num_seqs $n (ready rc=$rc)"
      grep -oE "'max_cudagraph_capture_size': [0-9]+|'cudagraph_capture_sizes': \[[^]]*\]|'cudagraph_mode': <[^>]*>" \
        $R/vllm-seqs$n.log | sort -u
      grep -hE "Graph capturing finished|GPU KV cache size|Available KV cache memory|Model loading took|Actual usage" \
        $R/vllm-seqs$n.log | cut -c1-400
      grep -aoE "Capturing CUDA graphs \([A-Z_]+\): 100%[^0-9]*[0-9]+/[0-9]+" $R/vllm-seqs$n.log | sort -u
      cat $R/nvidia-smi-seqs$n.txt 2>/dev/null
      python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['h200']['tenants'][0]['services'][0]['memory']; print('plan', {k: m[k] for k in ('kv_tokens','cuda_graph_gib','serving_gib','gpu_memory_gib')})" $R/plan-seqs$n.json
      grep -c '"choices"' $R/adapters-seqs$n.txt 2>/dev/null | sed 's/^/adapters answering: /'; } >> $R/graphs.txt 2>&1
  done
  cat $R/graphs.txt
  done_ graphs
}

collect() {
  ls -la $R > $R/files.txt
  { cat $R/timeline.txt; echo; cat $R/versions.txt 2>/dev/null; echo; grep -E "KV cache|Maximum concurrency|Model loading took|Available KV|CUDA graph|Graph capturing" $R/vllm.log 2>/dev/null | cut -c1-300;
    echo; grep -hE "Model loading took|Actual usage|CUDA graph|GPU KV cache size|Available KV" $R/vllm*.log 2>/dev/null | cut -c1-700;
    echo; cat $R/conform.txt 2>/dev/null | head -60; echo; cat $R/conform2.txt 2>/dev/null | head -30;
    echo; cat $R/bench/bench_compare.md 2>/dev/null; echo; cat $R/conform-spare.txt $R/conform-bi.txt 2>/dev/null | head -80;
    echo; cat $R/bench-diag/bench_compare.md 2>/dev/null; echo; cat $R/graphs.txt 2>/dev/null; } > $R/summary.txt
  if [ -n "${OUT:-}" ]; then
    cp $R/summary.txt $OUT/summary.txt
    tar -czf $OUT/results.tgz -C $W --exclude='*.pid' results
    ls -la $OUT
  fi
}
trap collect EXIT

for s in "$@"; do
  case $s in
    all) for t in install build plan serve conform conform2 iso10 bench; do do_$t || { log "stage $t failed"; exit 1; }; done ;;
    *) do_$s || { log "stage $s failed"; exit 1; } ;;
  esac
done
log "end, $(left)s of the budget left"
