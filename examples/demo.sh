#!/usr/bin/env bash
# The main job end to end on the sample extension, with no external service:
# install → pack → keygen + sign → serve (embedded local store) → publish --server → fetch back → verify.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/fastpack" ] || { "$PYTHON" -m venv "$VENV" && "$VENV/bin/python" -m pip install -q --upgrade pip; }
"$VENV/bin/python" -m pip install -q -e '.[all]'
PATH="$PWD/$VENV/bin:$PATH"

WORK=$(mktemp -d)
PORT=${PORT:-$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
BASE=http://127.0.0.1:$PORT
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

echo "== pack"
fastpack pack examples/hello-extension/dist "$WORK/bundle.tar.zst" --json
HASH=$(cut -d' ' -f1 "$WORK/bundle.sha256")

echo "== keygen + sign (cosign key made on the spot)"
export COSIGN_PASSWORD=demo-password
fastpack keygen --algorithm cosign --output-dir "$WORK/keys"
fastpack sign "$WORK/bundle.tar.zst" --algorithm cosign --key "$WORK/keys/cosign.key"

echo "== serve on $BASE (local store in $WORK/store; signatures must verify against cosign.pub)"
FASTPACK_API_TOKENS=demo-token SIGNING_TRUST_BUNDLE="$WORK/keys/cosign.pub" \
  fastpack serve --host 127.0.0.1 --port "$PORT" --store "$WORK/store" 2>"$WORK/serve.log" &
SERVER_PID=$!
"$VENV/bin/python" - "$BASE" <<'PY'
import sys, time, urllib.request
for _ in range(150):
    try:
        urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=1)
        break
    except OSError:
        time.sleep(0.2)
else:
    sys.exit("fastpack serve did not start; see serve.log")
PY

echo "== publish --server"
fastpack publish --bundle "$WORK/bundle.tar.zst" --manifest examples/hello-extension/dist/manifest.json \
  --declared-hash "$WORK/bundle.sha256" --signature "$WORK/bundle.tar.zst.SIGNATURE" \
  --signature-algorithm cosign --server "$BASE" --token demo-token

echo "== fetch back and verify"
"$VENV/bin/python" - "$BASE" "$HASH" "$WORK" <<'PY'
import sys, urllib.request
base, digest, work = sys.argv[1:]
for name in ("bundle.tar.zst", "SIGNATURE"):
    request = urllib.request.Request(f"{base}/api/ext-bundles/sha256/{digest}/{name}",
                                     headers={"authorization": "Bearer demo-token"})
    with urllib.request.urlopen(request) as response, open(f"{work}/fetched.{name}", "wb") as out:
        out.write(response.read())
PY
fastpack verify "$WORK/fetched.bundle.tar.zst" --sha256 "$HASH" --signature "$WORK/fetched.SIGNATURE" \
  --algorithm cosign --key "$WORK/keys/cosign.pub"
echo "== done: $HASH published, fetched and verified"
