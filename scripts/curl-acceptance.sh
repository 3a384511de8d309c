#!/usr/bin/env bash
# Issue 2, acceptance 1: the documented client calls, verbatim except for the host, against a
# running sandbox. Usage: BASE=http://127.0.0.1:PORT [ALGA_API_KEY=sandbox-key] [TICKET_ID=...] \
#   scripts/curl-acceptance.sh
# Start one with: SANDBOX_PORT=8787 cargo run --example sandbox   (or `alga-batch sandbox`).
set -euo pipefail
: "${BASE:?set BASE to the sandbox URL, e.g. http://127.0.0.1:8787}"
export ALGA_API_KEY="${ALGA_API_KEY:-sandbox-key}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
if [ -z "${TICKET_ID:-}" ]; then
  TICKET_ID="$(curl -sf "$BASE/api/v1/tickets?limit=1&sort=ticket_number&order=asc" -H "X-API-Key: $ALGA_API_KEY" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["ticket_id"])')"
fi
export TICKET_ID
head -c 40000 /dev/urandom > incident-screenshot.png

echo "== POST comment"
curl -X POST "$BASE/api/v1/tickets/$TICKET_ID/comments" -H "Content-Type: application/json" -H "X-API-Key: $ALGA_API_KEY" -d '{"comment_text": "We reproduced the issue and are collecting logs now.", "is_internal": false}'
echo
echo "== GET comments"
curl -X GET "$BASE/api/v1/tickets/$TICKET_ID/comments" -H "X-API-Key: $ALGA_API_KEY" | tee comments.json
echo
grep -q "We reproduced the issue and are collecting logs now." comments.json
echo "== POST document"
curl -X POST "$BASE/api/v1/tickets/$TICKET_ID/documents" -H "X-API-Key: $ALGA_API_KEY" -F "file=@./incident-screenshot.png" | tee upload.json
echo
DOCUMENT_ID="$(python3 -c 'import json; print(json.load(open("upload.json"))["data"]["document_id"])')"
echo "== GET documents"
curl -X GET "$BASE/api/v1/tickets/$TICKET_ID/documents" -H "X-API-Key: $ALGA_API_KEY" | tee documents.json
echo
grep -q "$DOCUMENT_ID" documents.json
echo "== GET document $DOCUMENT_ID"
curl -X GET "$BASE/api/v1/tickets/$TICKET_ID/documents/$DOCUMENT_ID" -H "X-API-Key: $ALGA_API_KEY" -o downloaded-file.bin
cmp incident-screenshot.png downloaded-file.bin
echo "OK: comment posted and listed; document uploaded, listed and downloaded byte-identical"
