#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian machine (as root): system packages, the Docker engine,
# the project's virtual environment and the local images. Each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
command -v socat >/dev/null || need_apt+=(socat)
command -v git >/dev/null || need_apt+=(git)
command -v chromium >/dev/null || need_apt+=(chromium)  # the web app's browser tests (no Playwright download)
command -v docker-compose >/dev/null || need_apt+=(docker-compose)  # docker-compose.yml's round trip (1.29 in bookworm)
# the store's tests run on SQLite and on a private PostgreSQL cluster (initdb, pg_ctl)
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# report.pdf: WeasyPrint loads Pango (and through it HarfBuzz and fontconfig) at run time, and needs one font
libraries=$(ldconfig -p 2>/dev/null || true)
grep -q 'libpango-1\.0\.so\.0' <<<"$libraries" || need_apt+=(libpango-1.0-0)
grep -q 'libpangoft2-1\.0\.so\.0' <<<"$libraries" || need_apt+=(libpangoft2-1.0-0)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# detach LOG COMMAND...: start a daemon in its own session, stdin from /dev/null, stdout and stderr to LOG, and no other
# descriptor of this shell (`nohup dockerd &` kept them all: under `flock`, dockerd held the lock for ever)
detach() {
    python3 -c 'import subprocess, sys
log = open(sys.argv[1], "wb")
subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True, start_new_session=True)' "$@"
}

if ! docker info >/dev/null 2>&1; then
    echo "setup: starting dockerd"
    mkdir -p /var/log
    detach /var/log/grader-dockerd.log dockerd
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/grader-dockerd.log" >&2; exit 1; }
fi

if [ ! -x .venv/bin/grader ] || [ pyproject.toml -nt .venv/.installed ] || [ requirements.lock -nt .venv/.installed ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip >/dev/null
    # the grader's own dependencies exactly as locked (as the deployment image installs them), then the test extras
    .venv/bin/pip install -q --require-hashes -r requirements.lock
    .venv/bin/pip install -q --no-deps -e .
    .venv/bin/pip install -q -e '.[dev,test]'
    touch .venv/.installed
fi

.venv/bin/grader images build

# docker-compose.yml's image trusts what this host trusts (Dockerfile)
install -D -m 644 /etc/ssl/certs/ca-certificates.crt .build/ca-certificates.crt
