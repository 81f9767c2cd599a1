#!/usr/bin/env python3
"""Checks for scripts/check-deploy, run in its virtualenv.

  deploy_check.py k8s [--configs DIR] FILE...   every manifest against the Kubernetes
      schemas (strict, oldest and newest supported version), custom resources against
      deploy/kubernetes/schemas; with --configs, each ConfigMap's tollgate.yaml is written
      to DIR for `tollgate check-config`
  deploy_check.py yaml FILE...                  each file parses as YAML
  deploy_check.py links BOOK_DIR                every relative link and #anchor of the
      built book points at a file and an id that exist
"""

import html.parser
import json
import os
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


def main():
    commands = {"k8s": k8s, "yaml": parse_yaml, "links": links}
    if len(sys.argv) < 3 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return 1 if commands[sys.argv[1]](sys.argv[2:]) else 0


if __name__ == "__main__":
    sys.exit(main())
