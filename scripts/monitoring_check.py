#!/usr/bin/env python3
"""Asks a running Prometheus, through its HTTP API, what the shipped monitoring needs: the
lltune metrics scraped from node_exporter's textfile collector, every query of every panel of
the Grafana dashboard answered with data, and every alerting rule loaded and healthy. Exits
non-zero naming what is missing. Standard library only.

    scripts/monitoring_check.py PROMETHEUS_URL DASHBOARD_JSON RULES_YAML_GROUP HOSTS
"""

import json
import sys
import time
import urllib.parse
import urllib.request


def api(base, path, **params):
    url = f"{base}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{url}: {body}")
    return body["data"]


def query(base, expr):
    return api(base, "query", query=expr)["result"]


def main():
    base, dashboard, group, hosts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    # Wait (bounded) for the first scrape of the textfile and the first rule evaluation.
    deadline = time.monotonic() + 90
    while True:
        try:
            scraped = query(base, "lltune_score")
            rules = api(base, "rules")["groups"]
            evaluated = any(g["name"] == group and g.get("lastEvaluation", "").startswith("20") for g in rules)
            if len(scraped) == hosts and evaluated:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"monitoring_check: no {hosts} lltune_score samples and evaluated rules within 90 s")
        time.sleep(1)
    failures = []
    up = query(base, 'up{job="node"}')
    if not up or up[0]["value"][1] != "1":
        failures.append(f"node_exporter is not up: {up}")
    errors = query(base, "node_textfile_scrape_error")
    if not errors or errors[0]["value"][1] != "0":
        failures.append(f"node_exporter's textfile collector reports an error: {errors}")
    with open(dashboard, encoding="utf-8") as f:
        dash = json.load(f)
    print(f"{'panel':<42} {'query':<60} series")
    for panel in dash["panels"]:
        for target in panel["targets"]:
            result = query(base, target["expr"])
            print(f"{panel['title'][:42]:<42} {target['expr'][:60]:<60} {len(result)}")
            if not result:
                failures.append(f"panel {panel['title']!r}: {target['expr']} returned no data")
    # Each rule evaluated on the scraped data: pending (all have a `for`) exactly when its
    # expression returns samples now. Rules evaluate every second; a state from before the
    # first scrape may linger for an evaluation or two.
    deadline = time.monotonic() + 20
    while True:
        rules = [r for g in api(base, "rules")["groups"] if g["name"] == group for r in g["rules"]]
        wrong = []
        for r in rules:
            active = len(query(base, r["query"])) > 0
            if r["health"] != "ok" or (r.get("state") in ("pending", "firing")) != active:
                wrong.append(f"{r['name']}: health {r['health']}, state {r.get('state')}, expression active {active}")
        if not wrong or time.monotonic() > deadline:
            break
        time.sleep(1)
    if not rules:
        failures.append(f"no rule group {group!r} is loaded")
    for r in rules:
        print(f"rule {r['name']}: {r['health']}, {r.get('state', '')}, {len(r.get('alerts', []))} alert(s)")
    failures.extend(f"rule {w}" for w in wrong)
    if failures:
        sys.exit("monitoring_check: " + "; ".join(failures))
    print(f"monitoring_check: {hosts} hosts scraped, {sum(len(p['targets']) for p in dash['panels'])} panel queries answered, {len(rules)} rules healthy")


if __name__ == "__main__":
    main()
