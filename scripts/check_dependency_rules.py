#!/usr/bin/env python3
"""Fail when a crate breaks the layering rules in scripts/dependency_rules.toml.

Reads `cargo metadata` (the resolved graph, normal dependencies only) and checks,
for every crate with rules, that no forbidden crate is reachable and that its direct
dependencies are within `allowed_direct` when that list is given.

    scripts/check_dependency_rules.py              # check the workspace
    scripts/check_dependency_rules.py --self-test  # prove the checker can fail
"""
import argparse
import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_graph():
    out = subprocess.run(["cargo", "metadata", "--format-version", "1"], cwd=ROOT,
                         check=True, capture_output=True, text=True)
    meta = json.loads(out.stdout)
    names = {p["id"]: p["name"] for p in meta["packages"]}
    edges = {}
    for node in meta["resolve"]["nodes"]:
        normal = [d["pkg"] for d in node["deps"]
                  if any(k["kind"] is None for k in d["dep_kinds"])]
        edges[node["id"]] = normal
    by_name = {}
    for pid in meta["workspace_members"]:
        by_name[names[pid]] = pid
    return names, edges, by_name


def expand(items, groups):
    out = set()
    for item in items:
        if item.startswith("@"):
            out.update(groups[item[1:]])
        else:
            out.add(item)
    return out


def path_to(start, target_names, names, edges):
    """Breadth-first search; returns the dependency path to the first forbidden crate."""
    parent = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for dep in edges.get(node, []):
            if dep in parent:
                continue
            parent[dep] = node
            if names[dep] in target_names:
                chain = [dep]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])
                return [names[p] for p in reversed(chain)]
            queue.append(dep)
    return None


def check(rules):
    names, edges, members = load_graph()
    groups = rules.get("groups", {})
    problems = []
    for crate, rule in rules.get("crates", {}).items():
        if crate not in members:
            problems.append(f"{crate}: has rules but is not a workspace member")
            continue
        pid = members[crate]
        forbidden = expand(rule.get("forbidden", []), groups)
        chain = path_to(pid, forbidden, names, edges)
        if chain:
            problems.append(f"{crate} must not depend on {chain[-1]}: {' -> '.join(chain)}")
        if "allowed_direct" in rule:
            allowed = set(rule["allowed_direct"])
            for dep in edges[pid]:
                if names[dep] not in allowed:
                    problems.append(f"{crate} may depend directly only on {sorted(allowed)}, "
                                    f"not {names[dep]}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, default=ROOT / "scripts" / "dependency_rules.toml")
    parser.add_argument("--self-test", action="store_true",
                        help="check that a rule the workspace breaks is reported")
    args = parser.parse_args()
    rules = tomllib.loads(args.rules.read_text())
    if args.self_test:
        broken = {"crates": {"lumine-cli": {"forbidden": ["lumine-action"]},
                             "lumine-action": {"allowed_direct": []}}}
        problems = check(broken)
        expected = ["lumine-cli must not depend on lumine-action",
                    "lumine-action may depend directly only on []"]
        missing = [e for e in expected if not any(p.startswith(e) for p in problems)]
        if missing:
            print("dependency-rule checker self-test FAILED: not reported:", missing, "got", problems)
            return 1
        print("dependency-rule checker self-test: ok (a broken rule is reported)")
        return 0
    problems = check(rules)
    for p in problems:
        print(f"dependency rule broken: {p}")
    if problems:
        return 1
    print(f"dependency rules: ok ({len(rules.get('crates', {}))} crates checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
