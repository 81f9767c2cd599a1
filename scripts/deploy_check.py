#!/usr/bin/env python3
"""Checks for scripts/check-deploy, run in its virtualenv.

  deploy_check.py k8s [--configs DIR] FILE...   every manifest against the Kubernetes
      schemas (strict, oldest and newest supported version), custom resources against
      deploy/kubernetes/schemas; with --configs, each ConfigMap's tollgate.yaml is written
      to DIR for `tollgate check-config`
  deploy_check.py yaml FILE...                  each file parses as YAML
  deploy_check.py links BOOK_DIR                every relative link and #anchor of the
      built book points at a file and an id that exist
  deploy_check.py dashboards DATASOURCES OUT DASHBOARD...   each dashboard parses, names the
      provisioned Prometheus data source through its `datasource` variable, and has unique
      panel ids; every PromQL expression (panels, variables), with Grafana's variables
      filled in, is written to OUT as a recording rule for `promtool check rules`
  deploy_check.py alerts RULES TESTS BOOK_DIR   every alert has a summary, a description and
      a runbook_url whose page and #anchor exist in the built book, and a unit test where it
      fires and one where it does not
"""

import html.parser
import json
import os
import re
import sys
import urllib.parse

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K8S_VERSIONS = ["1.30.0", "1.37.0"]
CUSTOM = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.json",
    ("networking.istio.io/v1alpha3", "EnvoyFilter"): "envoyfilter.json",
    ("traefik.io/v1alpha1", "Middleware"): "traefik-middleware.json",
}


def k8s(args):
    import jsonschema
    import kubernetes_validate

    configs = None
    if args[:1] == ["--configs"]:
        configs, args = args[1], args[2:]
    failed = 0
    for path in args:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        if not docs:
            print(f"FAIL {path}: no resource")
            failed += 1
        for doc in docs:
            name = f"{path}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            schema = CUSTOM.get((doc.get("apiVersion"), doc.get("kind")))
            try:
                if schema:
                    with open(os.path.join(ROOT, "deploy/kubernetes/schemas", schema)) as f:
                        jsonschema.validate(doc, json.load(f))
                    print(f"ok   {name} (deploy/kubernetes/schemas/{schema})")
                else:
                    for version in K8S_VERSIONS:
                        kubernetes_validate.validate(doc, version, strict=True)
                    print(f"ok   {name} (Kubernetes {', '.join(K8S_VERSIONS)}, strict)")
            except Exception as e:  # each failure is reported, then the next resource
                message = getattr(e, "message", None) or str(e)
                where = "/".join(str(p) for p in getattr(e, "absolute_path", []) or [])
                print(f"FAIL {name}: {where + ': ' if where else ''}{message}")
                failed += 1
                continue
            if configs and doc.get("kind") == "ConfigMap" and "tollgate.yaml" in doc.get("data", {}):
                out = os.path.join(configs, f"{doc['metadata']['name']}-{len(os.listdir(configs))}.yaml")
                with open(out, "w") as f:
                    f.write(doc["data"]["tollgate.yaml"])
    return failed


def parse_yaml(args):
    failed = 0
    for path in args:
        try:
            with open(path) as f:
                list(yaml.safe_load_all(f))
            print(f"ok   {path}")
        except yaml.YAMLError as e:
            print(f"FAIL {path}: {e}")
            failed += 1
    return failed


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "img", "link", "script"):
                self.links.append(a[key])


def links(args):
    book = os.path.abspath(args[0])
    pages = {}
    for folder, _, files in os.walk(book):
        for name in files:
            if name.endswith(".html"):
                path = os.path.join(folder, name)
                page = Page()
                with open(path, encoding="utf-8") as f:
                    page.feed(f.read())
                pages[path] = page
    failed = checked = 0
    for path, page in sorted(pages.items()):
        if os.path.basename(path) in ("print.html", "404.html", "toc.html"):
            continue  # the same links as the chapters, or mdBook's own
        for link in page.links:
            url = urllib.parse.urlsplit(link)
            if url.scheme or url.netloc or link.startswith(("mailto:", "javascript:")):
                continue
            target = path if not url.path else os.path.normpath(
                os.path.join(os.path.dirname(path), urllib.parse.unquote(url.path)))
            if os.path.isdir(target):
                target = os.path.join(target, "index.html")
            checked += 1
            where = os.path.relpath(path, book)
            if not os.path.exists(target):
                print(f"FAIL {where}: {link}: no such file")
                failed += 1
            elif url.fragment and target in pages and urllib.parse.unquote(url.fragment) not in pages[target].ids:
                print(f"FAIL {where}: {link}: no such anchor")
                failed += 1
    print(f"links: {checked} checked in {len(pages)} pages, {failed} broken")
    return failed


# Grafana's interval variables become durations, every other variable a plain word, so
# that an expression parses as Prometheus would receive it.
INTERVALS = {"__rate_interval", "__interval", "__range", "__auto"}
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::[^}]*)?\}|(\w+))")


def fill_variables(expr):
    def one(m):
        name = m.group(1) or m.group(2)
        return "5m" if name in INTERVALS else "x"
    return VARIABLE.sub(one, expr)


def variable_query(q):
    """The PromQL inside a Prometheus variable's query, or None (label_names() and the like)."""
    q = (q.get("query", "") if isinstance(q, dict) else q or "").strip()
    m = re.fullmatch(r"label_values\((.*),\s*\w+\s*\)", q, re.S)
    if m:
        return m.group(1)
    m = re.fullmatch(r"query_result\((.*)\)", q, re.S)
    if m:
        return m.group(1)
    if q.startswith(("label_values(", "label_names(", "metrics(")):
        return None
    return q or None


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def dashboards(args):
    with open(args[0]) as f:
        sources = [d for d in yaml.safe_load(f)["datasources"] if d["type"] == "prometheus"]
    uids = {d["uid"] for d in sources}
    out, files = args[1], args[2:]
    failed, rules, seen = 0, [], {}
    for path in files:
        problems = []
        try:
            with open(path) as f:
                dash = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            print(f"FAIL {path}: {e}")
            failed += 1
            continue
        uid = dash.get("uid")
        if not uid or uid in seen:
            problems.append(f"uid {uid!r} missing or also in {seen.get(uid)}")
        seen[uid] = path
        if not isinstance(dash.get("schemaVersion"), int):
            problems.append("no schemaVersion")
        variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
        ds = variables.get("datasource")
        if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            problems.append("no `datasource` variable of Prometheus data sources")
        elif ds.get("current", {}).get("value") not in uids:
            problems.append(f"the datasource variable's default {ds.get('current')} is not a "
                            f"provisioned Prometheus uid ({', '.join(sorted(uids))})")
        ids = [p.get("id") for p in walk_panels(dash.get("panels", []))]
        if len(ids) != len(set(ids)):
            problems.append("panel ids repeat")
        queries = []
        for v in variables.values():
            if v.get("type") == "query":
                queries.append((f"variable {v['name']}", v.get("datasource"), variable_query(v.get("query"))))
        for p in walk_panels(dash.get("panels", [])):
            for t in p.get("targets", []):
                queries.append((f"panel {p.get('id')} ({p.get('title')}) {t.get('refId')}",
                                t.get("datasource") or p.get("datasource"), t.get("expr")))
        for where, source, expr in queries:
            if source != {"type": "prometheus", "uid": "${datasource}"}:
                problems.append(f"{where}: data source {source} is not the `datasource` variable")
            if expr:
                name = re.sub(r"[^a-zA-Z0-9_]", "_", f"dashboard:{uid}:{where}").strip("_")
                rules.append({"record": name, "expr": fill_variables(expr)})
        for p in problems:
            print(f"FAIL {path}: {p}")
        failed += len(problems)
        if not problems:
            print(f"ok   {path} ({len(queries)} queries)")
    with open(out, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, f, sort_keys=False, width=1000)
    return failed


def alerts(args):
    rules_path, tests_path, book = args
    with open(rules_path) as f:
        groups = yaml.safe_load(f)["groups"]
    with open(tests_path) as f:
        tests = yaml.safe_load(f)["tests"]
    fires, silent = set(), set()
    for t in tests:
        for case in t.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    pages = {}
    failed = 0
    base = "https://github.com/tollgate-rs/tollgate/blob/main/docs/"
    for g in groups:
        for r in g["rules"]:
            if "alert" not in r:
                continue
            name, problems = r["alert"], []
            ann = r.get("annotations", {})
            for key in ("summary", "description", "runbook_url"):
                if not ann.get(key):
                    problems.append(f"no {key}")
            url = ann.get("runbook_url", "")
            if url:
                page, _, anchor = url.partition("#")
                if not page.startswith(base) or not anchor:
                    problems.append(f"runbook_url {url} is not a page of docs/ with an #anchor")
                else:
                    html_path = os.path.join(book, page[len(base):].removesuffix(".md") + ".html")
                    if html_path not in pages and os.path.exists(html_path):
                        parsed = Page()
                        with open(html_path, encoding="utf-8") as f:
                            parsed.feed(f.read())
                        pages[html_path] = parsed.ids
                    if html_path not in pages:
                        problems.append(f"runbook_url {url}: no page {html_path}")
                    elif anchor not in pages[html_path]:
                        problems.append(f"runbook_url {url}: no #{anchor} on its page")
            if name not in fires:
                problems.append(f"no test in {tests_path} where it fires")
            if name not in silent:
                problems.append(f"no test in {tests_path} where it stays silent")
            for p in problems:
                print(f"FAIL {name}: {p}")
            failed += len(problems)
            if not problems:
                print(f"ok   {name}")
    return failed


def main():
    commands = {"k8s": k8s, "yaml": parse_yaml, "links": links, "dashboards": dashboards, "alerts": alerts}
    if len(sys.argv) < 3 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return 1 if commands[sys.argv[1]](sys.argv[2:]) else 0


if __name__ == "__main__":
    sys.exit(main())
