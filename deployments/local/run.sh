#!/usr/bin/env bash
# make run: a local formq demo. Starts Redis (appendonly, noeviction) and
# versitygw (S3, posix backend) with data under ./.data, then the API and
# one worker with deployments/local/actions.yaml. Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DATA=$ROOT/.data

API_ADDR=${FORMQ_ADDR:-127.0.0.1:8080}
WORKER_ADDR=${FORMQ_WORKER_ADDR:-127.0.0.1:9090}
REDIS_PORT=${FORMQ_DEMO_REDIS_PORT:-6390}
S3_PORT=${FORMQ_DEMO_S3_PORT:-7070}

deployments/local/install.sh

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "${API_ADDR##*:}:FORMQ_ADDR" "${WORKER_ADDR##*:}:FORMQ_WORKER_ADDR" "$REDIS_PORT:FORMQ_DEMO_REDIS_PORT" "$S3_PORT:FORMQ_DEMO_S3_PORT"; do
  port=${p%%:*} name=${p#*:}
  if port_busy "$port"; then
    echo "make run: port $port is already in use; stop what uses it or set $name to another address/port" >&2
    exit 1
  fi
done

echo "build: bin/api bin/worker"
go build -o bin/api ./cmd/api
go build -o bin/worker ./cmd/worker

mkdir -p "$DATA/redis" "$DATA/s3" "$DATA/logs"
pids=()
stopping=""
cleanup() {
  stopping=1
  trap - INT TERM EXIT
  echo
  echo "stopping formq demo"
  # The API and the worker first, so they finish in-flight work while Redis
  # and S3 are still up; then the servers.
  for p in "${pids[@]:2}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]:2}"; do wait "$p" 2>/dev/null || true; done
  for p in "${pids[@]:0:2}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DATA/redis" \
  --appendonly yes --maxmemory-policy noeviction --daemonize no --protected-mode yes \
  >"$DATA/logs/redis.log" 2>&1 &
pids+=($!)
bin/versitygw --port "127.0.0.1:$S3_PORT" --access formqdemo --secret formqdemosecret \
  --keep-alive --quiet posix "$DATA/s3" >"$DATA/logs/versitygw.log" 2>&1 &
pids+=($!)

wait_port() {
  for _ in $(seq 1 100); do port_busy "$1" && return 0; sleep 0.1; done
  echo "make run: $2 did not start; see $DATA/logs/" >&2
  exit 1
}
wait_port "$REDIS_PORT" redis-server
wait_port "$S3_PORT" versitygw

export FORMQ_ENV=development
export FORMQ_ADDR=$API_ADDR FORMQ_WORKER_ADDR=$WORKER_ADDR
export FORMQ_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export FORMQ_S3_ENDPOINT="http://127.0.0.1:$S3_PORT" FORMQ_S3_BUCKET=formq FORMQ_S3_CREATE_BUCKET=true
export FORMQ_S3_ACCESS_KEY=formqdemo FORMQ_S3_SECRET_KEY=formqdemosecret
export FORMQ_ACTIONS=${FORMQ_ACTIONS:-deployments/local/actions.yaml}
export FORMQ_ADMIN_TOKEN=${FORMQ_ADMIN_TOKEN:-demo-admin-token}
export FORMQ_WEBHOOK_ALLOW_PRIVATE=true

bin/api >"$DATA/logs/api.log" 2>&1 &
pids+=($!)
bin/worker >"$DATA/logs/worker.log" 2>&1 &
pids+=($!)

URL="http://$API_ADDR"
for _ in $(seq 1 100); do
  curl -fsS "$URL/readyz" >/dev/null 2>&1 && break
  if ! kill -0 "${pids[2]}" 2>/dev/null; then echo "make run: the API stopped:" >&2; tail -5 "$DATA/logs/api.log" >&2; exit 1; fi
  sleep 0.1
done
curl -fsS "$URL/readyz" >/dev/null || { echo "make run: the API is not ready; see $DATA/logs/api.log" >&2; exit 1; }

cat <<MSG

formq is running at $URL  (logs in .data/logs/, Ctrl-C stops everything)

  hosted form:   $URL/forms/create-user
  try a post:    curl -H 'Accept: application/json' -F name='Ada Lovelace' -F email=ada@example.com -F avatar=@testdata/avatar.png $URL/actions/create-user
  an invalid one: curl -H 'Accept: application/json' -F name=A -F email=a@example.com $URL/actions/create-user
  live events:   curl -N -H "Authorization: Bearer $FORMQ_ADMIN_TOKEN" $URL/events

  admin token:   $FORMQ_ADMIN_TOKEN  (FORMQ_ADMIN_TOKEN, demo-admin-token unless you set it)
  queues:        $URL/admin/queues/  (the asynq dashboard)
                 your browser asks for a login: any user name, the admin token as the password
                 (scripts: curl -u admin:$FORMQ_ADMIN_TOKEN $URL/admin/queues/, or -H 'Authorization: Bearer $FORMQ_ADMIN_TOKEN')
  metrics:       $URL/metrics (API), http://$WORKER_ADDR/metrics (worker)

MSG

# Stop everything when any part stops.
wait -n "${pids[@]}" || true
[ -n "$stopping" ] || echo "make run: a process stopped; see .data/logs/" >&2
