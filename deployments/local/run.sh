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

mkdir -p "$DATA/redis" "$DATA/s3" "$DATA/logs"

# build compiles bin/api and bin/worker, showing progress: the first build
# downloads and compiles every dependency, which takes minutes. The whole
# output goes to .data/logs/build.log; on failure its end is shown.
build() {
  local log=$DATA/logs/build.log tty="" downloaded=0 compiled=0 line last_line=""
  [ -t 1 ] && tty=1
  echo "build: bin/api and bin/worker (the first build downloads and compiles the dependencies: a few minutes)"
  set +e
  go build -v -o bin/ ./cmd/api ./cmd/worker >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    downloaded=$(grep -c '^go: downloading' "$log" || true)
    compiled=$(grep -vc '^go: ' "$log" || true)
    if [ -n "$tty" ]; then
      printf '\rbuild: %d modules downloaded, %d packages compiled' "$downloaded" "$compiled"
    elif [ "$compiled" -gt 0 ] || [ "$downloaded" -gt 0 ]; then
      line="build: $downloaded modules downloaded, $compiled packages compiled"
      [ "$line" = "$last_line" ] || echo "$line"
      last_line=$line
      sleep 4
    fi
    sleep 1
  done
  wait "$pid"
  local rc=$?
  set -e
  [ -n "$tty" ] && [ $((downloaded + compiled)) -gt 0 ] && echo
  if [ "$rc" -ne 0 ]; then
    echo "make run: the build failed:" >&2
    grep -v '^go: downloading' "$log" | tail -20 >&2
    exit 1
  fi
}
build

# FORMQ_SECRET seals the status links, done pages and bound arguments. The
# demo keeps one in .data/secret, made on the first run, so the links of
# earlier submissions still work after a restart.
SECRET_FILE=$DATA/secret
if [ -z "${FORMQ_SECRET:-}" ]; then
  if [ ! -s "$SECRET_FILE" ]; then
    (umask 077 && head -c 36 /dev/urandom | base64 | tr -d '\n' >"$SECRET_FILE")
  fi
  FORMQ_SECRET=$(cat "$SECRET_FILE")
fi
export FORMQ_SECRET
pids=() names=()
stopping=""
# start runs one part of the demo in the background, its output in
# .data/logs/NAME.log, in a session of its own: Ctrl-C reaches only this
# script, which stops the parts in order (cleanup).
start() {
  local name=$1
  shift
  setsid "$@" >"$DATA/logs/$name.log" 2>&1 &
  pids+=($!) names+=("$name")
}
cleanup() {
  stopping=1
  trap - INT TERM HUP EXIT
  echo
  echo "stopping formq demo"
  # The API and the worker first, so they finish in-flight work while Redis
  # and S3 are still up; then the servers.
  for p in "${pids[@]:2}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]:2}"; do wait "$p" 2>/dev/null || true; done
  for p in "${pids[@]:0:2}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM HUP EXIT

start redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DATA/redis" \
  --appendonly yes --maxmemory-policy noeviction --daemonize no --protected-mode yes
start versitygw bin/versitygw --port "127.0.0.1:$S3_PORT" --access formqdemo --secret formqdemosecret \
  --keep-alive --quiet posix "$DATA/s3"

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

start api bin/api
start worker bin/worker

URL="http://$API_ADDR"
for _ in $(seq 1 100); do
  curl -fsS "$URL/readyz" >/dev/null 2>&1 && break
  if ! kill -0 "${pids[2]}" 2>/dev/null; then echo "make run: the API stopped:" >&2; tail -5 "$DATA/logs/api.log" >&2; exit 1; fi
  sleep 0.1
done
curl -fsS "$URL/readyz" >/dev/null || { echo "make run: the API is not ready; see $DATA/logs/api.log" >&2; exit 1; }

# The actions the API loaded, from its "api ready" log line, so the banner
# names the forms of the file it runs.
action_names=$(grep -m1 '"msg":"api ready"' "$DATA/logs/api.log" | sed -E 's/.*"actions":\[([^]]*)\].*/\1/' | tr -d '"' | tr ',' ' ')
ADMIN="$FORMQ_ADMIN_TOKEN"
SECRET_NOTE="FORMQ_SECRET, as you set it"
[ "$FORMQ_SECRET" != "$(cat "$SECRET_FILE" 2>/dev/null)" ] || SECRET_NOTE=".data/secret (FORMQ_SECRET, made on the first run and kept, so links to earlier submissions work after a restart)"

echo
echo "formq is running at $URL with $FORMQ_ACTIONS  (logs in .data/logs/, Ctrl-C stops everything)"
echo
echo "  your forms (hosted; post to $URL/actions/NAME from your own page):"
for n in $action_names; do
  printf '    %-22s %s\n' "$n" "$URL/forms/$n"
done
[ -n "$action_names" ] || echo "    (none: $FORMQ_ACTIONS declares no action)"
case " $action_names " in
*" create-user "*)
  cat <<MSG

  try a post:     curl -H 'Accept: application/json' -F name='Ada Lovelace' -F email=ada@example.com -F avatar=@testdata/avatar.png $URL/actions/create-user
  an invalid one: curl -H 'Accept: application/json' -F name=A -F email=a@example.com $URL/actions/create-user
MSG
  ;;
esac
cat <<MSG

  admin pages: your browser asks for a login: any user name, the admin token as the password
    inbox:        $URL/admin/inbox  (every submission, its files, steps and webhook deliveries)
    queues:       $URL/admin/queues/  (the asynq dashboard)
    admin token:  $ADMIN  (FORMQ_ADMIN_TOKEN; demo-admin-token unless you set it)
    scripts:      curl -H 'Authorization: Bearer $ADMIN' $URL/admin/submissions
  live events:    curl -N -H 'Authorization: Bearer $ADMIN' $URL/events
  API reference:  $URL/openapi.json
  metrics:        $URL/metrics (API), http://$WORKER_ADDR/metrics (worker)
  sealing key:    $SECRET_NOTE
  actions file:   edit $FORMQ_ACTIONS and the API and the worker load it again within 2 s
                  (.data/logs/api.log says "actions file reloaded", or why it kept the previous one)

MSG

# Stop everything when any part stops, and say which one and why.
ended="" rc=0
wait -n -p ended "${pids[@]}" || rc=$?
if [ -z "$stopping" ] && [ -n "$ended" ]; then
  for i in "${!pids[@]}"; do
    [ "${pids[$i]}" = "$ended" ] || continue
    echo "make run: the ${names[$i]} stopped (exit status $rc); the end of .data/logs/${names[$i]}.log:" >&2
    tail -5 "$DATA/logs/${names[$i]}.log" >&2
  done
fi
