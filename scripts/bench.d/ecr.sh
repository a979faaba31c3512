# scripts/bench.d/ecr.sh - the ECR rows of scripts/bench (sourced by it; uses its helpers: say, fail, free_port,
# wait_ready, run_wrk, w_begin/w_end, cpu_per_req, R, CONNS, WRK_SECS, BERTH_BIN, WORK, REPO).
#
# A second Berth, with auth on, one repository of 100+ images pushed with boto3's PutImage, one access key.  Every
# ECR request is a real SigV4 request signed by botocore (scripts/bench.d/ecr_sign.py) and verified by the server
# on every request (the signature stays valid for 15 minutes; the server does the full work each time).  wrk
# drives it exactly like the manifest GET rows above, so the baseline row - an OCI manifest GET of one of these
# images with a bearer token from /token (docker's path) on the same server, in the same run - compares like with
# like.  ECR's published default quotas are the reference: BatchCheckLayerAvailability 1,000 req/s, BatchGetImage
# 2,000 req/s (the goal: 10x).

ECR_REGION=us-east-1

ecr_wrk() { # KEY OPERATION BODY CHECK: check one answer with python (CHECK: an expression over `r`), then wrk
    local key=$1 op=$2 body=$3 check=$4
    /usr/bin/python3 - "$op" "$body" "$check" "http://127.0.0.1:$PORT" <<'EOF' || fail "ecr: $2 answered wrongly (above)"
import json, sys, urllib.request
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.session import Session
op, body, check, ep = sys.argv[1:5]
req = AWSRequest(method="POST", url=ep + "/", data=body.encode(), headers={
    "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921." + op})
SigV4Auth(Session().get_credentials(), "ecr", "us-east-1").add_auth(req)
p = req.prepare()
r = json.loads(urllib.request.urlopen(urllib.request.Request(ep + "/", data=p.body, method="POST",
                                                            headers=dict(p.headers.items()))).read())
if not eval(check):
    sys.exit("unexpected answer to %s: %s" % (op, json.dumps(r)[:600]))
EOF
    /usr/bin/python3 "$REPO/scripts/bench.d/ecr_sign.py" "http://127.0.0.1:$PORT" "$ECR_REGION" "$op" "$body" \
        "$WORK/ecr-$key.lua" || fail "ecr: signing $op"
    say "ecr: $op (wrk -t2 -c$CONNS -d${WRK_SECS}s, SigV4 verified on every request)"
    w_begin
    run_wrk "$key" / "$WORK/ecr-$key.lua" "$WRK_SECS"
    w_end "$key"
    cpu_per_req "$key"
}

ecr_bench() { # runs the ECR workloads; results in R[ecr:*]
    local dir=$WORK/ecr B kid sec pw tok d
    SRV=ecr
    PORT=$(free_port 17600)
    mkdir -p "$dir/data"
    B() { "$BERTH_BIN" "$@" --data "$dir/data"; }
    printf 'bench-pw-123456\n' | B user add bench --admin --password-stdin >/dev/null || fail "ecr: berth user add"
    B accesskey create --user bench >"$dir/key" || fail "ecr: berth accesskey create"
    kid=$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' "$dir/key")
    sec=$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' "$dir/key")
    "$BERTH_BIN" serve --listen "127.0.0.1:$PORT" --data "$dir/data" --log-level warn --access-log off \
        >"$dir/server.log" 2>&1 &
    SPID=$!
    PIDS_TO_KILL+=("$SPID")
    SLOG=$dir/server.log
    export AWS_ACCESS_KEY_ID=$kid AWS_SECRET_ACCESS_KEY=$sec AWS_CONFIG_FILE=/dev/null
    export AWS_SHARED_CREDENTIALS_FILE=/dev/null
    # /v2/ answers 401 with auth on: wait for the ECR API instead
    for _ in $(seq 100); do
        curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/" && break
        kill -0 "$SPID" 2>/dev/null || fail "ecr: berth exited at startup: $(tail -5 "$SLOG")"
        sleep 0.1
    done
    say "ecr: berth with auth on 127.0.0.1:$PORT; a repository of 100 images (boto3 PutImage)"
    pw=$(/usr/bin/python3 -c "
import boto3,base64
c=boto3.client('ecr',endpoint_url='http://127.0.0.1:$PORT',region_name='$ECR_REGION')
c.create_repository(repositoryName='bench/app')
print(base64.b64decode(c.get_authorization_token()['authorizationData'][0]['authorizationToken']).decode()[4:])") ||
        fail "ecr: create-repository / get-authorization-token"
    head -c 4096 /dev/urandom >"$dir/layer"
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$dir/config"
    for f in config layer; do
        d=sha256:$(sha256sum "$dir/$f" | cut -c1-64)
        curl -sf -u "AWS:$pw" -X POST --data-binary "@$dir/$f" \
            "http://127.0.0.1:$PORT/v2/bench/app/blobs/uploads/?digest=$d" >/dev/null || fail "ecr: pushing the $f"
        eval "ECR_${f^^}=$d ECR_${f^^}_SIZE=$(stat -c %s "$dir/$f")"
    done
    /usr/bin/python3 "$REPO/tests/e2e/ecr_boto.py" paginate "http://127.0.0.1:$PORT" bench/app 100 "$ECR_CONFIG" \
        "$ECR_CONFIG_SIZE" "$ECR_LAYER" "$ECR_LAYER_SIZE" >/dev/null || fail "ecr: pushing 100 images"
    R[ecr:load_before]=$(cut -d' ' -f1-3 /proc/loadavg)

    # the baseline: the OCI API on the same server, bearer token as docker gets it
    tok=$(curl -sf -u "AWS:$pw" "http://127.0.0.1:$PORT/token?service=berth&scope=repository:bench/app:pull" |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') || fail "ecr: /token"
    cat >"$WORK/ecr-mget.lua" <<EOF
wrk.method = "GET"
wrk.headers["Accept"] = "application/vnd.oci.image.manifest.v1+json"
wrk.headers["Authorization"] = "Bearer $tok"
EOF
    say "ecr: baseline OCI manifest GET with a bearer token (wrk -t2 -c$CONNS -d${WRK_SECS}s)"
    w_begin
    run_wrk mget /v2/bench/app/manifests/p00000 "$WORK/ecr-mget.lua" "$WRK_SECS"
    w_end mget
    cpu_per_req mget

    ecr_wrk bgi BatchGetImage '{"repositoryName":"bench/app","imageIds":[{"imageTag":"p00000"}]}' \
        'len(r["images"]) == 1 and not r["failures"]'
    ecr_wrk bcla BatchCheckLayerAvailability "{\"repositoryName\":\"bench/app\",\"layerDigests\":[\"$ECR_LAYER\"]}" \
        'r["layers"][0]["layerAvailability"] == "AVAILABLE" and not r["failures"]'
    ecr_wrk di DescribeImages '{"repositoryName":"bench/app","maxResults":100}' \
        'len(r["imageDetails"]) == 100'
    ecr_wrk dr DescribeRepositories '{}' 'r["repositories"][0]["repositoryName"] == "bench/app"'
    R[ecr:load_after]=$(cut -d' ' -f1-3 /proc/loadavg)

    if grep -qiE 'panic|fatal|error' "$SLOG"; then
        tail -20 "$SLOG" >&2
        fail "ecr: berth logged errors (above)"
    fi
    kill -TERM "$SPID"
    wait "$SPID" 2>/dev/null || true
    forget "$SPID"
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    rm -rf "$dir"
}

ecr_table() { # prints the ECR rows
    local row key label quota
    echo
    echo "ECR API on Berth - auth on, every request SigV4-signed by botocore and verified; wrk -t2 -c$CONNS," \
        "${WRK_SECS}s each; load average before ${R[ecr:load_before]:-?}, after ${R[ecr:load_after]:-?}"
    printf '%-52s %10s %8s %8s %11s %10s %8s\n' workload "req/s" "p50 ms" "p99 ms" "CPU us/req" "ECR quota" "x quota"
    printf '%s\n' "$(printf '%.0s-' $(seq 113))"
    for row in "mget|OCI manifest GET, bearer token (baseline, same server)|" \
        "bgi|BatchGetImage (1 image by tag)|2000" \
        "bcla|BatchCheckLayerAvailability (1 layer)|1000" \
        "di|DescribeImages (100 images per page)|" \
        "dr|DescribeRepositories|"; do
        IFS='|' read -r key label quota <<<"$row"
        printf '%-52s %10s %8s %8s %11s %10s %8s\n' "$label" "${R[ecr:${key}_rps]:--}" "${R[ecr:${key}_p50]:--}" \
            "${R[ecr:${key}_p99]:--}" "${R[ecr:${key}_us]:--}" "${quota:--}" \
            "$(awk -v r="${R[ecr:${key}_rps]:-}" -v q="$quota" 'BEGIN{ if (q > 0 && r ~ /^[0-9.]+$/) printf "%.1fx", r/q; else printf "-" }')"
    done
    echo "ECR quotas: Amazon ECR's default service quotas (requests per second per account and region)."
}
