#!/usr/bin/env bash
# make monitoring: the shipped dashboard and alerting rules (ansible/monitoring/) proven
# against real parts. The report playbook writes lltune.prom for a simulated rack (three hosts
# made from real servers' dumps, tests/fixtures/make-rack.sh); promtool checks the file and the
# rules and runs the rules' unit tests; then Debian's node_exporter serves the file through its
# textfile collector, Debian's Prometheus scrapes it and evaluates the rules, and every query
# of every dashboard panel must return data through Prometheus' HTTP API
# (scripts/monitoring_check.py). Everything runs on 127.0.0.1 ports picked free, under
# target/monitoring/, and is stopped at the end. Needs the collection and .venv (make
# collection) and, when missing, installs prometheus and prometheus-node-exporter (apt, as
# root or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
work=$top/target/monitoring
lltune=${LLTUNE:-$top/target/x86_64-unknown-linux-gnu/release/lltune}
[[ -x $lltune ]] || { echo "monitoring.sh: no lltune CLI at $lltune: run make collection" >&2; exit 2; }
[[ -x .venv/bin/ansible-playbook ]] || { echo "monitoring.sh: no .venv/bin/ansible-playbook: run make venv" >&2; exit 2; }

need=()
{ command -v prometheus && command -v promtool; } >/dev/null || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
if [ ${#need[@]} -gt 0 ]; then
    sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "monitoring.sh: apt-get install ${need[*]}"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi
promtool --version | head -1
prometheus-node-exporter --version 2>&1 | head -1

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

rm -rf "$work"
mkdir -p "$work/textfile"
echo "== the simulated rack's fleet report (lltune.tuning.report)"
bash tests/fixtures/make-rack.sh "$work/rack" 3 "$lltune" >/dev/null
LC_ALL=C.UTF-8 ANSIBLE_COLLECTIONS_PATH=$top/build/collections ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
    ANSIBLE_NOCOLOR=1 PATH=$top/.venv/bin:$PATH \
    ansible-playbook -i "$work/rack/inventory" lltune.tuning.report -e "lltune_report_dir=$work/textfile" \
    >"$work/report.log" || { cat "$work/report.log"; exit 1; }
hosts=$(grep -c '^lltune_score{' "$work/textfile/lltune.prom")
[ "$hosts" -eq 3 ] || { echo "monitoring.sh: lltune.prom has $hosts hosts, not 3" >&2; exit 1; }

echo "== promtool: the metrics file, the rules, the rules' unit tests"
promtool check metrics <"$work/textfile/lltune.prom"
promtool check rules ansible/monitoring/lltune-alerts.yml
(cd tests/monitoring && promtool test rules lltune-alerts.test.yml)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ne_port=$(free_port)
prom_port=$(free_port)
echo "== node_exporter (textfile collector) on 127.0.0.1:$ne_port, Prometheus on 127.0.0.1:$prom_port"
prometheus-node-exporter --web.listen-address="127.0.0.1:$ne_port" --collector.disable-defaults \
    --collector.textfile --collector.textfile.directory="$work/textfile" >"$work/node_exporter.log" 2>&1 &
pids+=($!)
cat >"$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $top/ansible/monitoring/lltune-alerts.yml
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:$ne_port"]
YML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)
if ! python3 scripts/monitoring_check.py "http://127.0.0.1:$prom_port" \
    ansible/monitoring/lltune-fleet.grafana.json lltune "$hosts"; then
    echo "--- node_exporter"; tail -20 "$work/node_exporter.log"
    echo "--- prometheus"; tail -20 "$work/prometheus.log"
    exit 1
fi
