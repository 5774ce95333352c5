#!/usr/bin/env python3
"""Generates the Switchyard evaluation conformance cases and hash vectors in this folder.

    pip install mmh3        # the reference MurmurHash3 (C extension), independent of every SDK
    python3 generate.py     # rewrites evaluation/*.json and murmur3.json

Every expectation below is written down by hand from EVALUATION.md (the comment or case name says
which rule decides it), except the variations served by rollouts: those apply EVALUATION.md
section 6 ("first variation whose cumulative weight exceeds the bucket") to the bucket computed by
mmh3, never by an SDK. Re-running the generator must produce byte-identical files (random keys come
from a fixed seed), so a diff in review means the cases changed.
"""

import json
import os
import random

import mmh3

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "evaluation")

ENV = {"id": "env-conformance", "key": "conformance", "project_id": "proj-conformance", "project_key": "conformance"}


def bucket(salt, value):
    """EVALUATION.md section 6, with the reference hash."""
    return mmh3.hash((salt + "." + value).encode("utf-8"), 0, signed=False) % 100000


def pick(weights, b):
    """First variation whose cumulative weight exceeds the bucket (weights: [(variation, w)])."""
    total = 0
    for variation, w in weights:
        total += w
        if total > b:
            return variation
    raise AssertionError("weights do not sum to 100000")


BOOL_VARS = [{"key": "on", "value": True}, {"key": "off", "value": False}]
ABC_VARS = [{"key": "a", "value": "A"}, {"key": "b", "value": "B"}, {"key": "c", "value": "C"}]


def flag(key, kind="boolean", variations=None, on=True, off=None, prereqs=None, targets=None,
         rules=None, fallthrough=None, salt=None, version=1, client_side=None):
    f = {"key": key, "kind": kind, "version": version,
         "variations": variations if variations is not None else (BOOL_VARS if kind == "boolean" else ABC_VARS),
         "on": on}
    if off is not None:
        f["off_variation"] = off
    if prereqs:
        f["prerequisites"] = [{"flag": p, "variation": v} for p, v in prereqs]
    if targets:
        f["targets"] = [{"context_kind": k, "variation": v, "values": vals} for k, v, vals in targets]
    if rules:
        f["rules"] = rules
    f["fallthrough"] = fallthrough if fallthrough is not None else {"variation": "off" if kind == "boolean" else "c"}
    if salt is not None:
        f["salt"] = salt
    if client_side is not None:
        f["client_side"] = client_side
    return f


def rule(clauses, serve, rid=None):
    r = {}
    if rid is not None:
        r["id"] = rid
    r["clauses"] = clauses
    r["serve"] = serve if isinstance(serve, dict) else {"variation": serve}
    return r


def clause(attribute, op, values, negate=False, kind=None):
    c = {}
    if kind is not None:
        c["context_kind"] = kind
    if attribute is not None:
        c["attribute"] = attribute
    c["op"] = op
    c["values"] = values
    if negate:
        c["negate"] = True
    return c


def rollout(weights, kind=None, bucket_by=None, salt=None, experiment_key=None):
    r = {}
    if kind is not None:
        r["context_kind"] = kind
    if bucket_by is not None:
        r["bucket_by"] = bucket_by
    if salt is not None:
        r["salt"] = salt
    if experiment_key is not None:
        r["experiment_key"] = experiment_key
    r["variations"] = [{"variation": v, "weight": w} for v, w in weights]
    return {"rollout": r}


def segment(key, included=None, excluded=None, rules=None, version=1):
    s = {"key": key, "version": version}
    if included:
        s["included"] = [{"context_kind": k, "values": v} for k, v in included]
    if excluded:
        s["excluded"] = [{"context_kind": k, "values": v} for k, v in excluded]
    if rules:
        s["rules"] = rules
    return s


def user(key, **attrs):
    c = {"kind": "user", "key": key}
    c.update(attrs)
    return c


class Suite:
    def __init__(self, name, description):
        self.name = name
        self.description = description
        self.flags = []
        self.segments = []
        self.raw_flags = []  # flags given as raw JSON values (malformed on purpose)
        self.cases = []

    def add_flag(self, f):
        self.flags.append(f)
        return f

    def variation_value(self, flag_key, variation):
        for f in self.flags + self.raw_flags:
            if isinstance(f, dict) and f.get("key") == flag_key:
                for v in f["variations"]:
                    if v["key"] == variation:
                        return v["value"]
        raise KeyError((flag_key, variation))

    def case(self, name, flag_key, context, variation=None, reason=None, rule_index=None, rule_id=None,
             error=None, type=None, default=None, experiment_key=None, comment=None):
        """variation: the key expected to be served, or None for the fallback."""
        assert reason is not None, name
        assert (reason == "ERROR") == (error is not None), name
        expect = {"value": default if variation is None else self.variation_value(flag_key, variation),
                  "variation": variation, "reason": reason}
        if error is not None:
            expect["error_code"] = error
        if rule_index is not None:
            expect["rule_index"] = rule_index
        if rule_id is not None:
            expect["rule_id"] = rule_id
        if experiment_key is not None:
            expect["experiment_key"] = experiment_key
        c = {"name": name, "flag": flag_key, "context": context}
        if type is not None:
            c["type"] = type
        if default is not None:
            c["default"] = default
        if comment is not None:
            c["comment"] = comment
        c["expect"] = expect
        for other in self.cases:
            assert other["name"] != name, "duplicate case name " + name
        self.cases.append(c)

    def write(self):
        flags = sorted(self.flags + self.raw_flags, key=lambda f: str(f.get("key", "")) if isinstance(f, dict) else "")
        doc = {
            "name": self.name,
            "description": self.description,
            "ruleset": {"schema_version": 1, "environment": ENV, "version": 1, "flags": flags,
                        "segments": sorted(self.segments, key=lambda s: str(s.get("key", "")))},
            "cases": self.cases,
        }
        with open(os.path.join(OUT, self.name + ".json"), "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
        return len(self.cases)


# ---------------------------------------------------------------------------------------------
# Operators: one flag per operator (rule 0 serves "on", the fallthrough "off"); a case says
# whether the rule matches. EVALUATION.md sections 3 and 4.
# ---------------------------------------------------------------------------------------------

def operators():
    s = Suite("operators", "Every operator, its type rules (no coercion), missing attributes, arrays and negation.")

    def op_flag(key, *clauses):
        s.add_flag(flag(key, rules=[rule(list(clauses), "on", rid="r-" + key)]))

    def expect(name, key, ctx, match, comment=None):
        if match:
            s.case(name, key, ctx, "on", "TARGETING_MATCH", rule_index=0, rule_id="r-" + key, comment=comment)
        else:
            s.case(name, key, ctx, "off", "DEFAULT", comment=comment)

    op_flag("in-string", clause("country", "in", ["US", "CA"]))
    expect("in string: first value", "in-string", user("u1", country="US"), True)
    expect("in string: second value", "in-string", user("u1", country="CA"), True)
    expect("in string: case-sensitive", "in-string", user("u1", country="us"), False)
    expect("in string: other value", "in-string", user("u1", country="MX"), False)
    expect("in string: missing attribute", "in-string", user("u1"), False)
    expect("in string: null attribute is missing", "in-string", user("u1", country=None), False)
    expect("in string: array with a listed element", "in-string", user("u1", country=["MX", "CA"]), True)
    expect("in string: array without listed elements", "in-string", user("u1", country=["MX", "BR"]), False)
    expect("in string: empty array", "in-string", user("u1", country=[]), False)
    expect("in string: number attribute never equals a string", "in-string", user("u1", country=1), False)
    expect("in string: object attribute never matches", "in-string", user("u1", country={"code": "US"}), False)
    expect("in string: nested array element never matches", "in-string", user("u1", country=[["US"]]), False)
    expect("in string: non-ASCII is byte-exact", "in-string", user("u1", country="ÜS"), False)

    op_flag("in-number", clause("age", "in", [1, 2.5, -3]))
    expect("in number: integer", "in-number", user("u1", age=1), True)
    expect("in number: 1.0 equals 1", "in-number", user("u1", age=1.0), True)
    expect("in number: fraction", "in-number", user("u1", age=2.5), True)
    expect("in number: negative", "in-number", user("u1", age=-3), True)
    expect("in number: other number", "in-number", user("u1", age=3), False)
    expect("in number: numeric string is not a number", "in-number", user("u1", age="1"), False)
    expect("in number: boolean is not a number", "in-number", user("u1", age=True), False)
    expect("in number: array of numbers", "in-number", user("u1", age=[7, 2.5]), True)

    op_flag("in-bool", clause("beta", "in", [True]))
    expect("in bool: true", "in-bool", user("u1", beta=True), True)
    expect("in bool: false", "in-bool", user("u1", beta=False), False)
    expect("in bool: string true is not a boolean", "in-bool", user("u1", beta="true"), False)
    expect("in bool: 1 is not a boolean", "in-bool", user("u1", beta=1), False)

    op_flag("in-mixed", clause("v", "in", ["1", 1, False]))
    expect("in mixed: string 1", "in-mixed", user("u1", v="1"), True)
    expect("in mixed: number 1", "in-mixed", user("u1", v=1), True)
    expect("in mixed: false", "in-mixed", user("u1", v=False), True)
    expect("in mixed: true", "in-mixed", user("u1", v=True), False)
    expect("in mixed: string false", "in-mixed", user("u1", v="false"), False)

    op_flag("in-key", clause("key", "in", ["alice", "bob"]))
    expect("in key: listed key", "in-key", user("alice"), True)
    expect("in key: other key", "in-key", user("carol"), False)
    expect("in key: an attribute named key cannot shadow the context key", "in-key", {"kind": "user", "key": "carol", "name": "alice"}, False)

    op_flag("contains", clause("email", "contains", ["@example.com"]))
    expect("contains: substring", "contains", user("u1", email="ann@example.com"), True)
    expect("contains: substring in the middle", "contains", user("u1", email="ann@example.com.au"), True)
    expect("contains: absent substring", "contains", user("u1", email="ann@example.org"), False)
    expect("contains: case-sensitive", "contains", user("u1", email="ann@EXAMPLE.com"), False)
    expect("contains: missing attribute", "contains", user("u1"), False)
    expect("contains: number attribute", "contains", user("u1", email=42), False)
    expect("contains: array element", "contains", user("u1", email=["x@y.z", "b@example.com"]), True)

    op_flag("contains-empty", clause("name", "contains", [""]))
    expect("contains empty string: any string", "contains-empty", user("u1", name="anything"), True)
    expect("contains empty string: empty string", "contains-empty", user("u1", name=""), True)
    expect("contains empty string: number is not a string", "contains-empty", user("u1", name=0), False)

    op_flag("starts-with", clause("role", "starts_with", ["admin-", "root"]))
    expect("starts_with: first prefix", "starts-with", user("u1", role="admin-eu"), True)
    expect("starts_with: second prefix", "starts-with", user("u1", role="rooted"), True)
    expect("starts_with: equal to the prefix", "starts-with", user("u1", role="root"), True)
    expect("starts_with: prefix elsewhere", "starts-with", user("u1", role="xadmin-"), False)
    expect("starts_with: case-sensitive", "starts-with", user("u1", role="Admin-eu"), False)
    expect("starts_with: shorter than the prefix", "starts-with", user("u1", role="adm"), False)

    op_flag("ends-with", clause("domain", "ends_with", [".gov"]))
    expect("ends_with: suffix", "ends-with", user("u1", domain="nasa.gov"), True)
    expect("ends_with: suffix elsewhere", "ends-with", user("u1", domain="gov.uk"), False)
    expect("ends_with: empty string", "ends-with", user("u1", domain=""), False)
    expect("ends_with: boolean attribute", "ends-with", user("u1", domain=True), False)

    op_flag("matches", clause("email", "matches", ["^[a-z]+@corp\\.io$"]))
    expect("matches: anchored match", "matches", user("u1", email="ann@corp.io"), True)
    expect("matches: uppercase fails the class", "matches", user("u1", email="Ann@corp.io"), False)
    expect("matches: anchored at the end", "matches", user("u1", email="ann@corp.iox"), False)
    expect("matches: escaped dot", "matches", user("u1", email="ann@corpxio"), False)
    op_flag("matches-unanchored", clause("path", "matches", ["corp", "^/admin"]))
    expect("matches: unanchored search", "matches-unanchored", user("u1", path="/x/corp/y"), True)
    expect("matches: any expression", "matches-unanchored", user("u1", path="/admin/users"), True)
    expect("matches: none", "matches-unanchored", user("u1", path="/home"), False)
    expect("matches: number attribute is not a string", "matches-unanchored", user("u1", path=5), False)
    op_flag("matches-unicode", clause("city", "matches", ["^Zü.ich$"]))
    expect("matches: dot matches one non-ASCII character", "matches-unicode", user("u1", city="Zürich"), True)
    expect("matches: non-ASCII literal", "matches-unicode", user("u1", city="Zurich"), False)

    op_flag("lt", clause("score", "lt", [10]))
    expect("lt: smaller", "lt", user("u1", score=9), True)
    expect("lt: equal", "lt", user("u1", score=10), False)
    expect("lt: larger fraction", "lt", user("u1", score=10.5), False)
    expect("lt: negative", "lt", user("u1", score=-1), True)
    expect("lt: numeric string is not a number", "lt", user("u1", score="9"), False)
    expect("lt: missing", "lt", user("u1"), False)
    expect("lt: array element", "lt", user("u1", score=[50, 3]), True)
    op_flag("lte", clause("score", "lte", [10]))
    expect("lte: equal", "lte", user("u1", score=10), True)
    expect("lte: equal as float", "lte", user("u1", score=10.0), True)
    expect("lte: just above", "lte", user("u1", score=10.0001), False)
    op_flag("gt", clause("score", "gt", [10]))
    expect("gt: larger", "gt", user("u1", score=11), True)
    expect("gt: equal", "gt", user("u1", score=10), False)
    expect("gt: exponent notation", "gt", user("u1", score=1e3), True)
    expect("gt: boolean is not a number", "gt", user("u1", score=True), False)
    op_flag("gte", clause("score", "gte", [10]))
    expect("gte: equal", "gte", user("u1", score=10), True)
    expect("gte: just below", "gte", user("u1", score=9.999), False)
    op_flag("lt-any", clause("score", "lt", [5, 100]))
    expect("lt with several values: any value", "lt-any", user("u1", score=50), True)
    expect("lt with several values: none", "lt-any", user("u1", score=100), False)

    op_flag("semver-eq", clause("version", "semver_eq", ["2.0.0"]))
    expect("semver_eq: equal", "semver-eq", user("u1", version="2.0.0"), True)
    expect("semver_eq: MAJOR.MINOR is read as MAJOR.MINOR.0", "semver-eq", user("u1", version="2.0"), True)
    expect("semver_eq: MAJOR is read as MAJOR.0.0", "semver-eq", user("u1", version="2"), True)
    expect("semver_eq: build metadata is ignored", "semver-eq", user("u1", version="2.0.0+build.7"), True)
    expect("semver_eq: pre-release differs", "semver-eq", user("u1", version="2.0.0-rc.1"), False)
    expect("semver_eq: leading v is not a version", "semver-eq", user("u1", version="v2.0.0"), False)
    expect("semver_eq: leading zero is not a version", "semver-eq", user("u1", version="02.0.0"), False)
    expect("semver_eq: number is not a version", "semver-eq", user("u1", version=2), False)
    expect("semver_eq: four components is not a version", "semver-eq", user("u1", version="2.0.0.0"), False)
    op_flag("semver-lt", clause("version", "semver_lt", ["1.10.0"]))
    expect("semver_lt: numeric minor compare", "semver-lt", user("u1", version="1.9.9"), True)
    expect("semver_lt: 1.2.0 < 1.10.0 numerically", "semver-lt", user("u1", version="1.2.0"), True)
    expect("semver_lt: pre-release is lower", "semver-lt", user("u1", version="1.10.0-alpha"), True)
    expect("semver_lt: equal", "semver-lt", user("u1", version="1.10.0"), False)
    expect("semver_lt: higher", "semver-lt", user("u1", version="1.11.0"), False)
    expect("semver_lt: unparsable", "semver-lt", user("u1", version="not-a-version"), False)
    op_flag("semver-gt", clause("version", "semver_gt", ["1.0.0-alpha"]))
    expect("semver_gt: longer pre-release is higher", "semver-gt", user("u1", version="1.0.0-alpha.1"), True)
    expect("semver_gt: later pre-release", "semver-gt", user("u1", version="1.0.0-beta"), True)
    expect("semver_gt: release beats pre-release", "semver-gt", user("u1", version="1.0.0"), True)
    expect("semver_gt: numeric identifier is lower than alphanumeric", "semver-gt", user("u1", version="1.0.0-1"), False)
    expect("semver_gt: lower release", "semver-gt", user("u1", version="0.9.0"), False)
    op_flag("semver-gt-long", clause("version", "semver_gt", ["1.0.0-99999999999999999999"]))
    expect("semver_gt: numeric identifiers of any length compare numerically", "semver-gt-long",
           user("u1", version="1.0.0-100000000000000000000"), True)
    expect("semver_gt: a shorter numeric identifier is lower", "semver-gt-long",
           user("u1", version="1.0.0-9999999999999999999"), False)
    op_flag("semver-prerelease", clause("version", "semver_lt", ["1.0.0-beta.11"]))
    expect("semver precedence: beta.2 < beta.11 numerically", "semver-prerelease", user("u1", version="1.0.0-beta.2"), True)
    expect("semver precedence: beta < beta.11 (shorter)", "semver-prerelease", user("u1", version="1.0.0-beta"), True)
    expect("semver precedence: alpha.beta < beta.11", "semver-prerelease", user("u1", version="1.0.0-alpha.beta"), True)
    expect("semver precedence: rc.1 > beta.11", "semver-prerelease", user("u1", version="1.0.0-rc.1"), False)
    expect("semver precedence: beta.11 not < itself", "semver-prerelease", user("u1", version="1.0.0-beta.11"), False)

    # 2024-01-01T00:00:00Z is 1704067200000 ms since the epoch.
    op_flag("before", clause("created", "before", ["2024-01-01T00:00:00Z"]))
    expect("before: one second earlier", "before", user("u1", created="2023-12-31T23:59:59Z"), True)
    expect("before: same instant is not before", "before", user("u1", created="2024-01-01T00:00:00Z"), False)
    expect("before: offset converts to an earlier instant", "before", user("u1", created="2024-01-01T01:00:00+02:00"), True,
           comment="2024-01-01T01:00:00+02:00 is 2023-12-31T23:00:00Z")
    expect("before: offset converts to a later instant", "before", user("u1", created="2023-12-31T23:30:00-01:00"), False,
           comment="2023-12-31T23:30:00-01:00 is 2024-01-01T00:30:00Z")
    expect("before: epoch milliseconds earlier", "before", user("u1", created=1704067199999), True)
    expect("before: epoch milliseconds equal", "before", user("u1", created=1704067200000), False)
    expect("before: date without time does not parse", "before", user("u1", created="2023-12-31"), False)
    expect("before: garbage does not parse", "before", user("u1", created="yesterday"), False)
    expect("before: boolean is not a date", "before", user("u1", created=True), False)
    expect("before: fractional seconds", "before", user("u1", created="2023-12-31T23:59:59.999Z"), True)
    expect("before: a comma before fractional seconds is not RFC 3339", "before", user("u1", created="2023-12-31T23:00:00,5Z"), False)
    expect("before: a far-future epoch number is not before", "before", user("u1", created=1e20), False,
           comment="any finite number of milliseconds is an instant; converting it must not overflow")
    expect("before: a far-past epoch number is before", "before", user("u1", created=-1e20), True)
    op_flag("after", clause("created", "after", [1704067200000]))
    expect("after: one millisecond later", "after", user("u1", created="2024-01-01T00:00:00.001Z"), True)
    expect("after: same instant is not after", "after", user("u1", created="2024-01-01T00:00:00Z"), False)
    expect("after: epoch milliseconds later", "after", user("u1", created=1704067200001), True)
    expect("after: fractional milliseconds are truncated", "after", user("u1", created=1704067200000.9), False,
           comment="1704067200000.9 truncates to 1704067200000, which is not after itself")
    expect("after: truncation keeps a later millisecond", "after", user("u1", created=1704067200001.5), True)
    expect("after: much earlier", "after", user("u1", created="1999-12-31T23:59:59Z"), False)
    expect("after: a far-future epoch number is after", "after", user("u1", created=1e20), True)
    op_flag("after-far-future", clause("created", "after", [1e20]))
    expect("after: nothing today is after a far-future clause value", "after-far-future", user("u1", created="2024-01-01T00:00:00Z"), False)

    op_flag("not-in", clause("country", "in", ["US"], negate=True))
    expect("negate: other value matches", "not-in", user("u1", country="CA"), True)
    expect("negate: listed value does not match", "not-in", user("u1", country="US"), False)
    expect("negate: missing attribute never matches", "not-in", user("u1"), False)
    expect("negate: null attribute never matches", "not-in", user("u1", country=None), False)
    expect("negate: wrong type is a false operator result, negated", "not-in", user("u1", country=42), True)
    expect("negate: array with a listed element", "not-in", user("u1", country=["CA", "US"]), False)
    expect("negate: array without listed elements", "not-in", user("u1", country=["CA", "MX"]), True)
    expect("negate: empty array", "not-in", user("u1", country=[]), True)
    op_flag("not-starts-with", clause("email", "starts_with", ["test-"], negate=True))
    expect("negate starts_with: real user", "not-starts-with", user("u1", email="ann@x.io"), True)
    expect("negate starts_with: test user", "not-starts-with", user("u1", email="test-1@x.io"), False)

    op_flag("org-plan", clause("plan", "in", ["enterprise"], kind="organization"))
    expect("clause kind: multi-kind context with the kind", "org-plan",
           {"kind": "multi", "user": {"key": "u1"}, "organization": {"key": "o1", "plan": "enterprise"}}, True)
    expect("clause kind: the attribute on another kind does not count", "org-plan", user("u1", plan="enterprise"), False)
    expect("clause kind: single context of that kind", "org-plan", {"kind": "organization", "key": "o1", "plan": "enterprise"}, True)
    op_flag("no-device", clause("os", "in", ["ios"], negate=True, kind="device"))
    expect("negate with a missing kind never matches", "no-device", user("u1", os="android"), False)
    expect("negate with the kind present", "no-device", {"kind": "device", "key": "d1", "os": "android"}, True)

    op_flag("two-clauses", clause("country", "in", ["US"]), clause("age", "gte", [18]))
    expect("all clauses: both match", "two-clauses", user("u1", country="US", age=18), True)
    expect("all clauses: second fails", "two-clauses", user("u1", country="US", age=17), False)
    expect("all clauses: first fails", "two-clauses", user("u1", country="CA", age=30), False)
    expect("all clauses: second missing", "two-clauses", user("u1", country="US"), False)
    return s


# ---------------------------------------------------------------------------------------------
# The flow of the algorithm: off, targets, rules, fallthrough, kinds, types, context errors.
# ---------------------------------------------------------------------------------------------

def flow():
    s = Suite("flow", "Off flags, targets before rules, rule order, fallthrough, flag kinds, type requests, unknown and archived flags, context errors and error precedence.")
    s.add_flag(flag("off-with-variation", on=False, off="on", rules=[rule([clause("key", "in", ["alice"])], "off", rid="r0")]))
    s.case("off flag serves its off variation", "off-with-variation", user("bob"), "on", "DISABLED")
    s.case("off flag ignores matching rules", "off-with-variation", user("alice"), "on", "DISABLED")
    s.add_flag(flag("off-no-variation", on=False))
    s.case("off flag without off variation serves the fallback", "off-no-variation", user("bob"), None, "DISABLED", default=True)
    s.case("off flag without off variation and a null fallback", "off-no-variation", user("bob"), None, "DISABLED")

    s.add_flag(flag("banner", kind="string", fallthrough={"variation": "b"}))
    s.case("string flag fallthrough", "banner", user("u1"), "b", "DEFAULT")
    s.case("string flag asked as string", "banner", user("u1"), "b", "DEFAULT", type="string", default="Z")
    s.case("string flag asked as boolean is a type mismatch", "banner", user("u1"), None, "ERROR", error="TYPE_MISMATCH", type="boolean", default=False)
    s.case("string flag asked as json is a type mismatch", "banner", user("u1"), None, "ERROR", error="TYPE_MISMATCH", type="json", default={"x": 1})
    s.add_flag(flag("limit", kind="number", variations=[{"key": "low", "value": 10}, {"key": "high", "value": 20.5}, {"key": "neg", "value": -1}],
                    fallthrough={"variation": "high"}))
    s.case("number flag fallthrough", "limit", user("u1"), "high", "DEFAULT", type="number", default=0)
    s.case("number flag asked as string is a type mismatch", "limit", user("u1"), None, "ERROR", error="TYPE_MISMATCH", type="string", default="0")
    s.add_flag(flag("config", kind="json", variations=[{"key": "obj", "value": {"a": 1, "b": [True, None]}}, {"key": "arr", "value": [1, "two"]},
                                                        {"key": "str", "value": "plain"}],
                    rules=[rule([clause("country", "in", ["DE"])], "arr", rid="de")], fallthrough={"variation": "obj"}))
    s.case("json flag object value", "config", user("u1"), "obj", "DEFAULT", type="json")
    s.case("json flag array value from a rule", "config", user("u1", country="DE"), "arr", "TARGETING_MATCH", rule_index=0, rule_id="de", type="json")
    s.case("json flag asked as number is a type mismatch", "config", user("u1"), None, "ERROR", error="TYPE_MISMATCH", type="number", default=1)
    s.add_flag(flag("plain-bool", fallthrough={"variation": "on"}))
    s.case("boolean flag asked as boolean", "plain-bool", user("u1"), "on", "DEFAULT", type="boolean", default=False)
    s.case("boolean flag asked as json is a type mismatch", "plain-bool", user("u1"), None, "ERROR", error="TYPE_MISMATCH", type="json")
    s.case("boolean flag asked as number is a type mismatch", "plain-bool", user("u1"), None, "ERROR", error="TYPE_MISMATCH", type="number", default=3)

    s.add_flag(flag("targeted", kind="string",
                    targets=[("user", "a", ["alice", "amy"]), ("user", "c", ["carl"])],
                    rules=[rule([clause("key", "in", ["alice", "bob"])], "b", rid="named")], fallthrough={"variation": "c"}))
    s.case("target beats a matching rule", "targeted", user("alice"), "a", "TARGETING_MATCH")
    s.case("second key of a target", "targeted", user("amy"), "a", "TARGETING_MATCH")
    s.case("second target", "targeted", user("carl"), "c", "TARGETING_MATCH")
    s.case("not targeted: rule", "targeted", user("bob"), "b", "TARGETING_MATCH", rule_index=0, rule_id="named")
    s.case("not targeted: fallthrough", "targeted", user("zoe"), "c", "DEFAULT")
    s.case("targets are per kind", "targeted", {"kind": "device", "key": "alice"}, "c", "DEFAULT")

    s.add_flag(flag("target-kinds", kind="string",
                    targets=[("device", "b", ["d1"]), ("user", "a", ["alice"]), ("organization", "c", ["acme"])]))
    s.case("target order decides between kinds", "target-kinds", {"kind": "multi", "user": {"key": "alice"}, "device": {"key": "d1"}}, "b", "TARGETING_MATCH")
    s.case("user target in a multi-kind context", "target-kinds", {"kind": "multi", "user": {"key": "alice"}, "device": {"key": "d9"}}, "a", "TARGETING_MATCH")
    s.case("organization target", "target-kinds", {"kind": "organization", "key": "acme"}, "c", "TARGETING_MATCH")
    s.case("no target of the context's kinds", "target-kinds", {"kind": "organization", "key": "alice"}, "c", "DEFAULT")
    s.case("target for one kind ignores the same key in another", "target-kinds", user("d1"), "c", "DEFAULT")

    s.add_flag(flag("rule-order", kind="string", rules=[
        rule([clause("country", "in", ["US"])], "a", rid="us"),
        rule([clause("plan", "in", ["pro"])], "b", rid="pro"),
        rule([clause("plan", "in", ["pro"])], "a", rid="shadowed"),
        rule([clause("beta", "in", [True])], "b"),
    ], fallthrough={"variation": "c"}))
    s.case("first matching rule wins", "rule-order", user("u1", country="US", plan="pro"), "a", "TARGETING_MATCH", rule_index=0, rule_id="us")
    s.case("second rule", "rule-order", user("u1", plan="pro"), "b", "TARGETING_MATCH", rule_index=1, rule_id="pro")
    s.case("rule without id reports its index only", "rule-order", user("u1", beta=True), "b", "TARGETING_MATCH", rule_index=3)
    s.case("no rule matches", "rule-order", user("u1", plan="free"), "c", "DEFAULT")

    s.add_flag(flag("split-fallthrough", fallthrough=rollout([("on", 100000), ("off", 0)])))
    s.case("fallthrough rollout at 100% is SPLIT without a rule", "split-fallthrough", user("anyone"), "on", "SPLIT")
    s.add_flag(flag("split-rule", rules=[rule([clause("key", "starts_with", ["x"])], rollout([("off", 0), ("on", 100000)]), rid="xs")]))
    s.case("rule rollout is SPLIT with the rule", "split-rule", user("xavier"), "on", "SPLIT", rule_index=0, rule_id="xs")
    s.case("rule rollout not matching falls through", "split-rule", user("yolanda"), "off", "DEFAULT")

    s.case("unknown flag", "no-such-flag", user("u1"), None, "ERROR", error="FLAG_NOT_FOUND", default=True)
    s.case("archived flags are absent from rulesets", "archived-flag", user("u1"), None, "ERROR", error="FLAG_NOT_FOUND", type="string", default="fallback")
    s.case("flag keys are case-sensitive", "Plain-Bool", user("u1"), None, "ERROR", error="FLAG_NOT_FOUND")

    # Contexts (EVALUATION.md section 1).
    s.case("context without key", "plain-bool", {"kind": "user", "country": "US"}, None, "ERROR", error="TARGETING_KEY_MISSING", default=False)
    s.case("context with an empty key", "plain-bool", {"key": ""}, None, "ERROR", error="TARGETING_KEY_MISSING", default=False)
    s.case("context with a null key", "plain-bool", {"key": None}, None, "ERROR", error="TARGETING_KEY_MISSING", default=False)
    s.case("context with a numeric key", "plain-bool", {"key": 42}, None, "ERROR", error="INVALID_CONTEXT", default=False)
    s.case("kind defaults to user", "targeted", {"key": "alice"}, "a", "TARGETING_MATCH")
    s.case("multi-kind context with a kind missing its key", "plain-bool", {"kind": "multi", "user": {"key": "u1"}, "device": {"os": "ios"}}, None, "ERROR", error="TARGETING_KEY_MISSING", default=False)
    s.case("multi-kind context without kinds", "plain-bool", {"kind": "multi"}, None, "ERROR", error="INVALID_CONTEXT", default=False)
    s.case("multi-kind context with a non-object kind", "plain-bool", {"kind": "multi", "user": "alice"}, None, "ERROR", error="INVALID_CONTEXT", default=False)
    s.case("multi-kind context with an invalid kind and a kind missing its key", "plain-bool",
           {"kind": "multi", "user": {"name": "x"}, "device": {"key": 5}}, None, "ERROR", error="INVALID_CONTEXT", default=False,
           comment="INVALID_CONTEXT wins whatever the order of the kinds")
    s.case("multi-kind context with a nested kind naming another kind", "plain-bool", {"kind": "multi", "user": {"kind": "device", "key": "u1"}}, None, "ERROR", error="INVALID_CONTEXT", default=False)
    s.case("multi-kind context with a matching nested kind", "target-kinds", {"kind": "multi", "user": {"kind": "user", "key": "alice"}}, "a", "TARGETING_MATCH")
    s.case("multi-kind context with one kind", "target-kinds", {"kind": "multi", "device": {"key": "d1"}}, "b", "TARGETING_MATCH")
    s.case("invalid kind name", "plain-bool", {"kind": "bad kind!", "key": "u1"}, None, "ERROR", error="INVALID_CONTEXT", default=False)
    s.case("reserved kind name", "plain-bool", {"kind": "kind", "key": "u1"}, None, "ERROR", error="INVALID_CONTEXT", default=False)
    s.case("non-string kind", "plain-bool", {"kind": 7, "key": "u1"}, None, "ERROR", error="INVALID_CONTEXT", default=False)
    s.case("context that is a string", "plain-bool", "alice", None, "ERROR", error="INVALID_CONTEXT", default=False)
    s.case("context that is an array", "plain-bool", [{"key": "alice"}], None, "ERROR", error="INVALID_CONTEXT", default=False)
    s.case("context that is null", "plain-bool", None, None, "ERROR", error="INVALID_CONTEXT", default=False)

    # Precedence (EVALUATION.md section 8).
    s.case("precedence: unknown flag before context errors", "nope", {"kind": "user"}, None, "ERROR", error="FLAG_NOT_FOUND")
    s.case("precedence: type mismatch before context errors", "plain-bool", {"kind": "user"}, None, "ERROR", error="TYPE_MISMATCH", type="string", default="x")
    s.case("precedence: context errors before off", "off-with-variation", {"kind": "user"}, None, "ERROR", error="TARGETING_KEY_MISSING")
    return s


# ---------------------------------------------------------------------------------------------
# Prerequisites (EVALUATION.md section 2, step 6). String flags: yes=Y, no=N, maybe=M.
# ---------------------------------------------------------------------------------------------

YNM = [{"key": "yes", "value": "Y"}, {"key": "no", "value": "N"}, {"key": "maybe", "value": "M"}]


def prerequisites():
    s = Suite("prerequisites", "Prerequisite chains: met, off, failed, missing, malformed, cycles; off beats prerequisites, prerequisites beat targets.")

    def ynm(key, **kw):
        kw.setdefault("fallthrough", {"variation": "yes"})
        return s.add_flag(flag(key, kind="string", variations=YNM, **kw))

    ynm("base", targets=[("user", "no", ["carol"])],
        rules=[rule([clause("os", "in", ["ios"], kind="device")], "maybe", rid="ios")])
    ynm("child", prereqs=[("base", "yes")], off="no")
    ynm("grandchild", prereqs=[("child", "yes")], off="no")
    s.case("prerequisite met: fallthrough", "child", user("alice"), "yes", "DEFAULT")
    s.case("prerequisite serves another variation (target)", "child", user("carol"), "no", "PREREQUISITE_FAILED")
    s.case("prerequisite serves another variation (rule on another kind)", "child",
           {"kind": "multi", "user": {"key": "alice"}, "device": {"key": "d1", "os": "ios"}}, "no", "PREREQUISITE_FAILED")
    s.case("chain met", "grandchild", user("alice"), "yes", "DEFAULT")
    s.case("chain: failure two levels down", "grandchild", user("carol"), "no", "PREREQUISITE_FAILED")

    ynm("needs-failed-off-variation", prereqs=[("child", "no")], off="maybe")
    s.case("a prerequisite that failed its own prerequisite is not met, even serving the wanted variation",
           "needs-failed-off-variation", user("carol"), "maybe", "PREREQUISITE_FAILED",
           comment="child serves its off variation no with PREREQUISITE_FAILED, which does not count")
    s.case("prerequisite on another variation than served", "needs-failed-off-variation", user("alice"), "maybe", "PREREQUISITE_FAILED")

    ynm("switched-off", on=False, off="yes")
    ynm("needs-off-flag", prereqs=[("switched-off", "yes")], off="no")
    s.case("off prerequisite is not met even when its off variation is wanted", "needs-off-flag", user("alice"), "no", "PREREQUISITE_FAILED")

    ynm("needs-missing", prereqs=[("deleted-flag", "yes")])
    s.case("missing prerequisite flag is not met; no off variation serves the fallback", "needs-missing", user("alice"), None, "PREREQUISITE_FAILED", default="fallback")

    ynm("needs-unknown-variation", prereqs=[("base", "sometimes")], off="no")
    s.case("prerequisite naming a variation its flag lacks is never met", "needs-unknown-variation", user("alice"), "no", "PREREQUISITE_FAILED")

    s.raw_flags.append({"key": "broken", "kind": "string", "version": 1, "variations": YNM, "on": True,
                        "rules": [{"clauses": [{"attribute": "n", "op": "lt", "values": ["ten"]}], "serve": {"variation": "no"}}],
                        "fallthrough": {"variation": "yes"}})
    ynm("needs-broken", prereqs=[("broken", "yes")], off="no")
    s.case("malformed flag itself", "broken", user("alice"), None, "ERROR", error="PARSE_ERROR")
    s.case("malformed prerequisite is not met, and the dependent is not malformed", "needs-broken", user("alice"), "no", "PREREQUISITE_FAILED")

    ynm("second-fails", prereqs=[("base", "yes"), ("switched-off", "yes")], off="maybe")
    s.case("every prerequisite must be met", "second-fails", user("alice"), "maybe", "PREREQUISITE_FAILED")
    ynm("both-met", prereqs=[("base", "yes"), ("child", "yes")], off="no", fallthrough={"variation": "maybe"})
    s.case("two prerequisites met", "both-met", user("alice"), "maybe", "DEFAULT")

    ynm("off-with-failing-prereq", on=False, off="maybe", prereqs=[("switched-off", "yes")])
    s.case("off beats prerequisites", "off-with-failing-prereq", user("alice"), "maybe", "DISABLED")

    ynm("prereq-before-targets", prereqs=[("base", "yes")], off="no", targets=[("user", "maybe", ["carol", "alice"])])
    s.case("prerequisites are checked before targets", "prereq-before-targets", user("carol"), "no", "PREREQUISITE_FAILED")
    s.case("target after prerequisites met", "prereq-before-targets", user("alice"), "maybe", "TARGETING_MATCH")

    ynm("split-prereq", fallthrough=rollout([("yes", 100000), ("no", 0)]))
    ynm("needs-split", prereqs=[("split-prereq", "yes")], off="no", fallthrough={"variation": "maybe"})
    s.case("a prerequisite served by a rollout is met", "needs-split", user("alice"), "maybe", "DEFAULT")

    ynm("cycle-a", prereqs=[("cycle-b", "yes")])
    ynm("cycle-b", prereqs=[("cycle-a", "yes")])
    ynm("needs-cycle", prereqs=[("cycle-a", "yes")], off="no")
    s.case("prerequisite cycle: first flag is malformed", "cycle-a", user("alice"), None, "ERROR", error="PARSE_ERROR")
    s.case("prerequisite cycle: second flag is malformed", "cycle-b", user("alice"), None, "ERROR", error="PARSE_ERROR")
    s.case("depending on a cycle fails the prerequisite", "needs-cycle", user("alice"), "no", "PREREQUISITE_FAILED")
    ynm("cycle-3a", prereqs=[("cycle-3b", "yes")])
    ynm("cycle-3b", prereqs=[("cycle-3c", "yes")])
    ynm("cycle-3c", prereqs=[("cycle-3a", "yes")])
    s.case("three-flag cycle is malformed", "cycle-3b", user("alice"), None, "ERROR", error="PARSE_ERROR")
    s.raw_flags.append({"key": "self-prereq", "kind": "string", "version": 1, "variations": YNM, "on": True,
                        "prerequisites": [{"flag": "self-prereq", "variation": "yes"}], "fallthrough": {"variation": "yes"}})
    s.case("a flag cannot be its own prerequisite", "self-prereq", user("alice"), None, "ERROR", error="PARSE_ERROR")

    # A ten-flag chain: level-1 <- level-2 <- ... <- level-10; carol is targeted off at level 1.
    ynm("level-1", targets=[("user", "no", ["carol"])])
    for i in range(2, 11):
        ynm("level-%d" % i, prereqs=[("level-%d" % (i - 1), "yes")], off="no")
    s.case("ten-level chain met", "level-10", user("alice"), "yes", "DEFAULT")
    s.case("ten-level chain failing at the bottom", "level-10", user("carol"), "no", "PREREQUISITE_FAILED")
    s.case("middle of the chain", "level-5", user("carol"), "no", "PREREQUISITE_FAILED")
    s.case("prerequisites are evaluated with the caller's context errors first", "child", {"kind": "user", "key": ""}, None, "ERROR", error="TARGETING_KEY_MISSING")
    return s


# ---------------------------------------------------------------------------------------------
# Segments (EVALUATION.md section 5).
# ---------------------------------------------------------------------------------------------

def segments():
    s = Suite("segments", "Segment membership: excluded beats included beats rules; nesting; kinds; negation; malformed segments.")
    s.segments += [
        segment("beta", included=[("user", ["alice", "bob"])], excluded=[("user", ["bob", "eve"])],
                rules=[{"id": "beta-domain", "clauses": [clause("email", "ends_with", ["@beta.io"])]}]),
        segment("staff", rules=[{"clauses": [clause("email", "ends_with", ["@corp.io"]), clause("active", "in", [True])]}]),
        segment("inner", included=[("user", ["zed", "zoe"])]),
        segment("outer", excluded=[("user", ["zoe"])], rules=[{"clauses": [clause(None, "segment_match", ["inner"])]}]),
        segment("level-1", included=[("user", ["deep"])]),
        segment("level-2", rules=[{"clauses": [clause(None, "segment_match", ["level-1"])]}]),
        segment("level-3", rules=[{"clauses": [clause(None, "segment_match", ["level-2"])]}]),
        segment("devices", included=[("device", ["d1"])], excluded=[("user", ["mallory"])]),
        segment("enterprise", rules=[{"clauses": [clause("plan", "in", ["enterprise"], kind="organization")]}]),
        segment("not-staff", rules=[{"clauses": [clause(None, "segment_match", ["staff"], negate=True)]}]),
        segment("bad-regex", rules=[{"clauses": [clause("email", "matches", ["(unclosed"])]}]),
        segment("uses-bad", rules=[{"clauses": [clause(None, "segment_match", ["bad-regex"])]}]),
        segment("cyc-a", rules=[{"clauses": [clause(None, "segment_match", ["cyc-b"])]}]),
        segment("cyc-b", rules=[{"clauses": [clause(None, "segment_match", ["cyc-a"])]}]),
        segment("dangling", rules=[{"clauses": [clause(None, "segment_match", ["no-such-segment"])]}]),
        segment("empty"),
    ]

    def seg_flag(key, segs, negate=False):
        s.add_flag(flag(key, rules=[rule([clause(None, "segment_match", segs, negate=negate)], "on", rid="in-" + key)]))

    def expect(name, key, ctx, match):
        if match:
            s.case(name, key, ctx, "on", "TARGETING_MATCH", rule_index=0, rule_id="in-" + key)
        else:
            s.case(name, key, ctx, "off", "DEFAULT")

    seg_flag("beta-flag", ["beta"])
    expect("included key", "beta-flag", user("alice"), True)
    expect("excluded beats included", "beta-flag", user("bob"), False)
    expect("rule match", "beta-flag", user("carol", email="carol@beta.io"), True)
    expect("excluded beats rules", "beta-flag", user("eve", email="eve@beta.io"), False)
    expect("neither included nor matching", "beta-flag", user("dave", email="dave@gamma.io"), False)
    expect("missing attribute in a segment rule", "beta-flag", user("dave"), False)
    expect("included keys are per kind", "beta-flag", {"kind": "device", "key": "alice"}, False)

    seg_flag("not-beta", ["beta"], negate=True)
    expect("negated segment: outside", "not-beta", user("dave"), True)
    expect("negated segment: inside", "not-beta", user("alice"), False)
    expect("negated segment: excluded counts as outside", "not-beta", user("bob"), True)

    seg_flag("staff-flag", ["staff"])
    expect("segment rule: all clauses", "staff-flag", user("s1", email="s1@corp.io", active=True), True)
    expect("segment rule: one clause fails", "staff-flag", user("s1", email="s1@corp.io", active=False), False)

    seg_flag("any-of", ["staff", "beta"])
    expect("several segments: second", "any-of", user("alice"), True)
    expect("several segments: first", "any-of", user("s2", email="s2@corp.io", active=True), True)
    expect("several segments: none", "any-of", user("dave"), False)

    seg_flag("outer-flag", ["outer"])
    expect("nested: included in the inner segment", "outer-flag", user("zed"), True)
    expect("nested: outer exclusion beats the nested rule", "outer-flag", user("zoe"), False)
    expect("nested: in neither", "outer-flag", user("zack"), False)
    seg_flag("deep-flag", ["level-3"])
    expect("three levels deep", "deep-flag", user("deep"), True)
    expect("three levels deep: not included", "deep-flag", user("shallow"), False)
    seg_flag("not-staff-flag", ["not-staff"])
    expect("negated nested segment: outside staff", "not-staff-flag", user("x1", email="x@else.io", active=True), True)
    expect("negated nested segment: staff", "not-staff-flag", user("x1", email="x@corp.io", active=True), False)

    seg_flag("devices-flag", ["devices"])
    expect("device key included in a multi-kind context", "devices-flag", {"kind": "multi", "user": {"key": "alice"}, "device": {"key": "d1"}}, True)
    expect("exclusion of another kind beats inclusion", "devices-flag", {"kind": "multi", "user": {"key": "mallory"}, "device": {"key": "d1"}}, False)
    expect("user key equal to an included device key", "devices-flag", user("d1"), False)
    expect("device context alone", "devices-flag", {"kind": "device", "key": "d1"}, True)
    seg_flag("enterprise-flag", ["enterprise"])
    expect("segment rule on another kind", "enterprise-flag", {"kind": "multi", "user": {"key": "u"}, "organization": {"key": "o", "plan": "enterprise"}}, True)
    expect("segment rule on a kind the context lacks", "enterprise-flag", user("u", plan="enterprise"), False)
    seg_flag("empty-flag", ["empty"])
    expect("empty segment contains nobody", "empty-flag", user("alice"), False)
    seg_flag("empty-negated", ["empty"], negate=True)
    expect("negated empty segment contains everybody", "empty-negated", user("alice"), True)

    seg_flag("bad-regex-flag", ["bad-regex"])
    s.case("flag using a malformed segment", "bad-regex-flag", user("alice"), None, "ERROR", error="PARSE_ERROR", default=False)
    seg_flag("uses-bad-flag", ["uses-bad"])
    s.case("flag using a segment that nests a malformed segment", "uses-bad-flag", user("alice"), None, "ERROR", error="PARSE_ERROR", default=False)
    seg_flag("cycle-flag", ["cyc-a"])
    s.case("flag using a cycle of segments", "cycle-flag", user("alice"), None, "ERROR", error="PARSE_ERROR", default=False)
    seg_flag("dangling-flag", ["dangling"])
    s.case("flag using a segment that names a missing segment", "dangling-flag", user("alice"), None, "ERROR", error="PARSE_ERROR", default=False)
    seg_flag("unknown-segment-flag", ["no-such-segment"])
    s.case("flag naming a missing segment", "unknown-segment-flag", user("alice"), None, "ERROR", error="PARSE_ERROR", default=True)
    s.add_flag(flag("segment-in-second-rule", rules=[
        rule([clause("country", "in", ["FR"])], "off", rid="fr"),
        rule([clause(None, "segment_match", ["beta"])], "on", rid="beta")]))
    s.case("segment rule after a non-matching rule", "segment-in-second-rule", user("alice"), "on", "TARGETING_MATCH", rule_index=1, rule_id="beta")
    s.case("earlier rule wins over segment", "segment-in-second-rule", user("alice", country="FR"), "off", "TARGETING_MATCH", rule_index=0, rule_id="fr")
    return s


# ---------------------------------------------------------------------------------------------
# Multi-kind contexts across rules, targets and rollouts.
# ---------------------------------------------------------------------------------------------

def multikind():
    s = Suite("multikind", "Rules with clauses on several kinds, per-kind keys and attributes, kinds missing from the context.")
    s.add_flag(flag("ios-us", kind="string", rules=[
        rule([clause("country", "in", ["US"]), clause("os", "in", ["ios"], kind="device")], "a", rid="both"),
        rule([clause("os", "in", ["ios"], kind="device")], "b", rid="device-only"),
        rule([clause("key", "in", ["acme"], kind="organization")], "a", rid="acme"),
    ], fallthrough={"variation": "c"}))
    ctx = {"kind": "multi", "user": {"key": "alice", "country": "US"}, "device": {"key": "d1", "os": "ios"}}
    s.case("clauses on two kinds", "ios-us", ctx, "a", "TARGETING_MATCH", rule_index=0, rule_id="both")
    s.case("attribute of the wrong kind does not count", "ios-us", {"kind": "multi", "user": {"key": "alice", "country": "US", "os": "ios"}, "device": {"key": "d1", "os": "android"}},
           "c", "DEFAULT")
    s.case("device only", "ios-us", {"kind": "device", "key": "d1", "os": "ios"}, "b", "TARGETING_MATCH", rule_index=1, rule_id="device-only")
    s.case("user only: device clause does not match", "ios-us", user("alice", country="US"), "c", "DEFAULT")
    s.case("key clause on another kind", "ios-us", {"kind": "multi", "user": {"key": "acme"}, "organization": {"key": "acme"}}, "a", "TARGETING_MATCH", rule_index=2, rule_id="acme")
    s.case("same key in another kind does not count", "ios-us", user("acme"), "c", "DEFAULT")
    s.case("kinds in any order", "ios-us", {"device": {"key": "d1", "os": "ios"}, "user": {"key": "alice", "country": "US"}, "kind": "multi"}, "a", "TARGETING_MATCH", rule_index=0, rule_id="both")
    s.case("three kinds", "ios-us", {"kind": "multi", "user": {"key": "bob", "country": "CA"}, "device": {"key": "d2", "os": "ios"}, "organization": {"key": "acme"}},
           "b", "TARGETING_MATCH", rule_index=1, rule_id="device-only")
    s.add_flag(flag("custom-kind", rules=[rule([clause("tier", "gte", [3], kind="account.v2")], "on", rid="tier")]))
    s.case("kind names may contain dots and digits", "custom-kind", {"kind": "account.v2", "key": "acc-1", "tier": 3}, "on", "TARGETING_MATCH", rule_index=0, rule_id="tier")
    s.case("kind names are case-sensitive", "custom-kind", {"kind": "Account.v2", "key": "acc-1", "tier": 3}, "off", "DEFAULT")
    s.add_flag(flag("org-target", targets=[("organization", "on", ["acme"])]))
    s.case("organization target in a multi-kind context", "org-target", {"kind": "multi", "user": {"key": "u"}, "organization": {"key": "acme"}}, "on", "TARGETING_MATCH")
    s.case("organization target, user with that key", "org-target", user("acme"), "off", "DEFAULT")
    return s


# ---------------------------------------------------------------------------------------------
# Rollouts (EVALUATION.md section 6). Expected variations = pick(weights, bucket(...)) with mmh3.
# ---------------------------------------------------------------------------------------------

def find_keys(salt, targets, prefix):
    """Finds context keys whose bucket under salt is each of targets (deterministic scan)."""
    found = {}
    n = 0
    while len(found) < len(targets):
        k = "%s-%d" % (prefix, n)
        b = bucket(salt, k)
        if b in targets and b not in found:
            found[b] = k
        n += 1
    return found


def rollouts():
    s = Suite("rollouts", "Bucketing: exact bucket boundaries, salts, bucket_by attributes, kinds, zero weights, experiment keys, non-ASCII keys.")
    rng = random.Random(20240501)

    def split_case(name, flag_key, ctx, weights, salt, value, rule_index=None, rule_id=None, experiment_key=None, bucketed=True):
        b = bucket(salt, value) if bucketed else 0
        v = pick(weights, b)
        comment = "bucket(%r) = %d" % (salt + "." + value, b) if bucketed else "not bucketable: bucket 0"
        s.case(name, flag_key, ctx, v, "SPLIT", rule_index=rule_index, rule_id=rule_id,
               experiment_key=experiment_key if bucketed else None, comment=comment)

    # Three-way split with boundaries at 10000 and 50000 (cumulative 10000, 50000, 100000).
    w3 = [("a", 10000), ("b", 40000), ("c", 50000)]
    s.add_flag(flag("three-way", kind="string", salt="boundaries", fallthrough=rollout(w3)))
    edges = find_keys("boundaries", {0, 1, 9999, 10000, 10001, 49999, 50000, 99999}, "k")
    for b in sorted(edges):
        want = pick(w3, b)
        s.case("boundary: bucket %d" % b, "three-way", user(edges[b]), want, "SPLIT",
               comment="bucket('boundaries.%s') = %d: cumulative 10000/50000/100000 gives %s" % (edges[b], b, want))
    # The expectations above also follow from the boundaries alone:
    assert pick(w3, 9999) == "a" and pick(w3, 10000) == "b" and pick(w3, 49999) == "b" and pick(w3, 50000) == "c"

    for i in range(30):
        key = "user-%08x" % rng.getrandbits(32)
        split_case("three-way random key %d" % i, "three-way", user(key), w3, "boundaries", key)

    w50 = [("on", 50000), ("off", 50000)]
    s.add_flag(flag("default-salt", fallthrough=rollout(w50)))
    for i in range(10):
        key = "u%d" % rng.randrange(10 ** 9)
        split_case("default salt is the flag key %d" % i, "default-salt", user(key), w50, "default-salt", key)

    s.add_flag(flag("flag-salt", salt="s3cr3t", fallthrough=rollout(w50)))
    s.add_flag(flag("rollout-salt", salt="ignored", rules=[rule([clause("key", "starts_with", ["exp"])], rollout(w50, salt="experiment-42", experiment_key="exp-42"), rid="exp")],
                    fallthrough=rollout(w50)))
    for i in range(8):
        key = "exp%d" % rng.randrange(10 ** 6)
        split_case("flag salt overrides the key %d" % i, "flag-salt", user(key), w50, "s3cr3t", key)
        split_case("rollout salt overrides the flag salt %d" % i, "rollout-salt", user(key), w50, "experiment-42", key,
                   rule_index=0, rule_id="exp", experiment_key="exp-42")
        other = "n%d" % rng.randrange(10 ** 6)
        split_case("fallthrough uses the flag salt %d" % i, "rollout-salt", user(other), w50, "ignored", other)

    wz = [("a", 0), ("b", 30000), ("c", 70000)]
    s.add_flag(flag("zero-weight", kind="string", fallthrough=rollout(wz, bucket_by="team")))
    zero = find_keys("zero-weight", {0, 29999, 30000}, "t")
    for b in sorted(zero):
        s.case("zero weight is never served, bucket %d" % b, "zero-weight", user("u", team=zero[b]), pick(wz, b), "SPLIT",
               comment="bucket('zero-weight.%s') = %d" % (zero[b], b))
    s.case("not bucketable serves the first non-zero weight", "zero-weight", user("u"), "b", "SPLIT", comment="no team attribute: bucket 0")

    wb = [("a", 25000), ("b", 25000), ("c", 50000)]
    s.add_flag(flag("by-attribute", kind="string", salt="attr", fallthrough=rollout(wb, bucket_by="company", experiment_key="pricing")))
    for company in ["acme", "globex", "initech", "umbrella", "hooli"]:
        split_case("bucket by string attribute %s" % company, "by-attribute", user("k-" + company, company=company), wb, "attr", company, experiment_key="pricing")
    split_case("same attribute, different key, same bucket", "by-attribute", user("someone-else", company="acme"), wb, "attr", "acme", experiment_key="pricing")
    split_case("bucket by integer attribute", "by-attribute", user("k1", company=42), wb, "attr", "42", experiment_key="pricing")
    split_case("integer-valued float is an integer", "by-attribute", user("k1", company=42.0), wb, "attr", "42", experiment_key="pricing")
    split_case("negative integer", "by-attribute", user("k1", company=-7), wb, "attr", "-7", experiment_key="pricing")
    split_case("large integer", "by-attribute", user("k1", company=9007199254740991), wb, "attr", "9007199254740991", experiment_key="pricing")
    split_case("fractional number is not bucketable", "by-attribute", user("k1", company=4.5), wb, "attr", "", bucketed=False)
    split_case("2^53 is not bucketable", "by-attribute", user("k1", company=9007199254740992), wb, "attr", "", bucketed=False)
    split_case("boolean is not bucketable", "by-attribute", user("k1", company=True), wb, "attr", "", bucketed=False)
    split_case("missing attribute is not bucketable", "by-attribute", user("k1"), wb, "attr", "", bucketed=False)
    split_case("empty string is not bucketable", "by-attribute", user("k1", company=""), wb, "attr", "", bucketed=False)
    split_case("array is not bucketable", "by-attribute", user("k1", company=["acme"]), wb, "attr", "", bucketed=False)
    split_case("numeric string is hashed as a string", "by-attribute", user("k1", company="42"), wb, "attr", "42", experiment_key="pricing")
    s.add_flag(flag("by-key-attr", kind="string", salt="attr", fallthrough=rollout(wb, bucket_by="key")))
    split_case("bucket_by key is the context key", "by-key-attr", user("acme"), wb, "attr", "acme")

    s.add_flag(flag("by-device", kind="string", salt="dev", fallthrough=rollout(w3, kind="device", experiment_key="onboarding")))
    for i in range(6):
        d = "device-%d" % rng.randrange(10 ** 6)
        split_case("bucket by device key %d" % i, "by-device", {"kind": "multi", "user": {"key": "same-user"}, "device": {"key": d}}, w3, "dev", d, experiment_key="onboarding")
    split_case("context without the rollout's kind is not bucketable", "by-device", user("same-user"), w3, "dev", "", bucketed=False)
    s.add_flag(flag("by-org-plan", kind="string", salt="org", fallthrough=rollout(w3, kind="organization", bucket_by="plan")))
    split_case("bucket by an attribute of another kind", "by-org-plan", {"kind": "multi", "user": {"key": "u", "plan": "free"}, "organization": {"key": "o", "plan": "gold"}}, w3, "org", "gold")

    for key in ["jürgen", "用户-42", "🙂", "naïve café", "Ωμέγα", "\u0000nul"]:
        split_case("non-ASCII key %r" % key, "three-way", user(key), w3, "boundaries", key)
    s.add_flag(flag("unicode-salt", kind="string", salt="sél-✓", fallthrough=rollout(w3)))
    for key in ["alice", "bob", "карл"]:
        split_case("non-ASCII salt, key %s" % key, "unicode-salt", user(key), w3, "sél-✓", key)

    # Long salt and key (several murmur3 blocks, every tail length).
    s.add_flag(flag("long-salt", kind="string", salt="x" * 101, fallthrough=rollout(w3)))
    for n in range(0, 8):
        key = "k" * (40 + n)
        split_case("long salt and key, tail %d" % n, "long-salt", user(key), w3, "x" * 101, key)

    # One-variation and 100-variation rollouts.
    many = [{"key": "v%02d" % i, "value": i} for i in range(100)]
    wm = [("v%02d" % i, 1000) for i in range(100)]
    s.add_flag(flag("hundred", kind="number", variations=many, fallthrough=rollout(wm)))
    for i in range(10):
        key = "h%d" % rng.randrange(10 ** 9)
        split_case("hundred-way split %d" % i, "hundred", user(key), wm, "hundred", key)
    s.add_flag(flag("single", kind="string", fallthrough=rollout([("b", 100000)])))
    s.case("single-variation rollout", "single", user("anyone"), "b", "SPLIT")
    return s


# ---------------------------------------------------------------------------------------------
# Malformed flags (EVALUATION.md section 7): each is PARSE_ERROR; the healthy flag still works.
# ---------------------------------------------------------------------------------------------

def malformed():
    s = Suite("malformed", "Malformed flags evaluate to ERROR/PARSE_ERROR one by one; the rest of the ruleset evaluates normally.")
    s.add_flag(flag("healthy", fallthrough={"variation": "on"}))

    def base(key, **over):
        f = {"key": key, "kind": "boolean", "version": 1, "variations": BOOL_VARS, "on": True, "fallthrough": {"variation": "off"}}
        f.update(over)
        return f

    def r(clauses, serve=None):
        return [{"id": "r", "clauses": clauses, "serve": serve or {"variation": "on"}}]

    bad = [
        ("lt with a string value", base("bad-lt", rules=r([clause("n", "lt", ["10"])]))),
        ("unknown operator", base("bad-op", rules=r([{"attribute": "n", "op": "regex", "values": ["x"]}]))),
        ("invalid regular expression", base("bad-regex", rules=r([clause("email", "matches", ["(["])]))),
        ("regular expression over 1024 characters", base("long-regex", rules=r([clause("email", "matches", ["a" * 1025])]))),
        ("semver value that is not a version", base("bad-semver", rules=r([clause("v", "semver_eq", ["1.2.3.4"])]))),
        ("date value that is not a date", base("bad-date", rules=r([clause("d", "before", ["yesterday"])]))),
        ("in with an object value", base("bad-in", rules=r([clause("x", "in", [{"a": 1}])]))),
        ("in with a null value", base("null-in", rules=r([clause("x", "in", [None])]))),
        ("contains with a number", base("bad-contains", rules=r([clause("x", "contains", [1])]))),
        ("segment_match with a number", base("bad-segment-value", rules=r([clause(None, "segment_match", [5])]))),
        ("clause without values", base("no-values", rules=r([clause("x", "in", [])]))),
        ("clause without attribute", base("no-attribute", rules=r([{"op": "in", "values": ["x"]}]))),
        ("clause with reserved kind", base("bad-clause-kind", rules=r([clause("x", "in", ["y"], kind="multi")]))),
        ("rule without clauses", base("no-clauses", rules=[{"clauses": [], "serve": {"variation": "on"}}])),
        ("weights summing to 99999", base("weights-low", fallthrough=rollout([("on", 50000), ("off", 49999)]))),
        ("weights summing to 100001", base("weights-high", fallthrough=rollout([("on", 50001), ("off", 50000)]))),
        ("negative weight", base("weights-negative", fallthrough=rollout([("on", 100001), ("off", -1)]))),
        ("rollout with an unknown variation", base("rollout-unknown", fallthrough=rollout([("on", 50000), ("maybe", 50000)]))),
        ("rollout naming a variation twice", base("rollout-twice", fallthrough=rollout([("on", 50000), ("on", 50000)]))),
        ("rollout without variations", base("rollout-empty", fallthrough={"rollout": {"variations": []}})),
        ("rollout with an invalid kind", base("rollout-kind", fallthrough=rollout([("on", 100000)], kind="bad kind"))),
        ("serve with a variation and a rollout", base("serve-both", fallthrough={"variation": "on", "rollout": {"variations": [{"variation": "on", "weight": 100000}]}})),
        ("serve with neither", base("serve-neither", fallthrough={})),
        ("fallthrough naming an unknown variation", base("fallthrough-unknown", fallthrough={"variation": "maybe"})),
        ("off variation naming an unknown variation", base("off-unknown", off_variation="maybe")),
        ("target naming an unknown variation", base("target-unknown", targets=[{"context_kind": "user", "variation": "maybe", "values": ["a"]}])),
        ("key targeted to two variations", base("target-twice", targets=[{"context_kind": "user", "variation": "on", "values": ["a"]},
                                                                        {"context_kind": "user", "variation": "off", "values": ["a"]}])),
        ("empty target key", base("target-empty", targets=[{"context_kind": "user", "variation": "on", "values": [""]}])),
        ("boolean variation with a string value", base("bool-string", variations=[{"key": "on", "value": "true"}, {"key": "off", "value": False}])),
        ("string variation with a number", base("string-number", kind="string", variations=[{"key": "on", "value": 1}, {"key": "off", "value": "x"}])),
        ("number variation with a numeric string", base("number-string", kind="number", variations=[{"key": "on", "value": "1"}, {"key": "off", "value": 2}])),
        ("json variation that is null", base("json-null", kind="json", variations=[{"key": "on", "value": None}, {"key": "off", "value": {}}])),
        ("variation without a value", base("no-value", variations=[{"key": "on"}, {"key": "off", "value": False}])),
        ("one variation", base("one-variation", variations=[{"key": "off", "value": False}])),
        ("duplicate variation key", base("dup-variation", variations=[{"key": "on", "value": True}, {"key": "on", "value": False}])),
        ("invalid variation key", base("bad-variation-key", variations=[{"key": "o n", "value": True}, {"key": "off", "value": False}])),
        ("unknown kind", base("bad-kind", kind="integer")),
        ("on that is a string does not decode", base("on-string", on="yes")),
        ("rules that are not an array do not decode", base("rules-object", rules={"0": {}})),
        ("version that is a string does not decode", base("version-string", version="1")),
        ("duplicate prerequisite", base("dup-prereq", prerequisites=[{"flag": "healthy", "variation": "on"}, {"flag": "healthy", "variation": "on"}])),
        ("invalid rule id", base("bad-rule-id", rules=[{"id": "has space", "clauses": [clause("x", "in", ["y"])], "serve": {"variation": "on"}}])),
        ("duplicate rule id", base("dup-rule-id", rules=[{"id": "same", "clauses": [clause("x", "in", ["y"])], "serve": {"variation": "on"}},
                                                         {"id": "same", "clauses": [clause("x", "in", ["z"])], "serve": {"variation": "on"}}])),
    ]
    for name, f in bad:
        s.raw_flags.append(f)
        s.case(name, f["key"], user("alice", n=5, email="a@b.c", x="y"), None, "ERROR", error="PARSE_ERROR", default=True)
    s.case("malformed flag asked with the wrong type is still PARSE_ERROR", "bad-lt", user("alice"), None, "ERROR", error="PARSE_ERROR", type="string", default="s")
    s.case("malformed flag with an invalid context is still PARSE_ERROR", "bad-regex", {"kind": "user"}, None, "ERROR", error="PARSE_ERROR")
    s.raw_flags.append(base("duplicate"))
    s.raw_flags.append(base("duplicate", fallthrough={"variation": "on"}))
    s.case("duplicate flag key", "duplicate", user("alice"), None, "ERROR", error="PARSE_ERROR", default=True)
    s.raw_flags.append(base("bad key!"))
    s.case("flag with an invalid key is not in the ruleset", "bad key!", user("alice"), None, "ERROR", error="FLAG_NOT_FOUND", default=True)
    s.raw_flags.append(dict(base("unknown-fields"), future_field={"x": 1}, rules=[{"clauses": [dict(clause("x", "in", ["y"]), weight=3)], "serve": {"variation": "on"}, "note": "new"}]))
    s.case("unknown members are ignored", "unknown-fields", user("alice", x="y"), "on", "TARGETING_MATCH", rule_index=0)
    s.case("healthy flag beside malformed ones", "healthy", user("alice"), "on", "DEFAULT")
    return s


def hash_vectors():
    inputs = ["", "a", "ab", "abc", "abcd", "abcde", "hello", "hello, world", "The quick brown fox jumps over the lazy dog",
              "flag.alice", "my-flag.user-123", "boundaries.k-0", "é", "ü", "日本語", "🙂", "naïve café", "Ωμέγα", "用户-42",
              "\u0000", "\u0000\u0000\u0000\u0000", "x" * 101 + "." + "k" * 47, "salt.\u00e9t\u00e9", "ñ" * 7]
    rng = random.Random(7)
    for _ in range(16):
        n = rng.randrange(0, 40)
        inputs.append("".join(chr(rng.choice([rng.randrange(0x20, 0x7f), rng.randrange(0xa0, 0x3000)])) for _ in range(n)))
    hashes = []
    for s in inputs:
        hashes.append({"input": s, "seed": 0, "hash": mmh3.hash(s.encode("utf-8"), 0, signed=False)})
    for s, seed in [("hello", 1), ("hello", 0x9747b28c), ("", 1), ("日本語", 42)]:
        hashes.append({"input": s, "seed": seed, "hash": mmh3.hash(s.encode("utf-8"), seed, signed=False)})
    buckets = []
    for salt, value in [("my-flag", "alice"), ("my-flag", "bob"), ("checkout", "user-1"), ("exp-42", "日本語"), ("sél-✓", "🙂"), ("", ""), ("a", "b")]:
        buckets.append({"salt": salt, "value": value, "bucket": bucket(salt, value)})
    doc = {"description": "MurmurHash3 x86 32-bit of the UTF-8 bytes of input (unsigned), computed with the mmh3 reference; and buckets = murmur3(salt + '.' + value, seed 0) mod 100000.",
           "hashes": hashes, "buckets": buckets}
    with open(os.path.join(HERE, "murmur3.json"), "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    return len(hashes) + len(buckets)


def main():
    os.makedirs(OUT, exist_ok=True)
    total = 0
    for make in [operators, flow, prerequisites, segments, multikind, rollouts, malformed]:
        suite = make()
        n = suite.write()
        print("%-14s %4d cases" % (suite.name, n))
        total += n
    print("%-14s %4d cases" % ("total", total))
    print("murmur3        %4d vectors" % hash_vectors())


if __name__ == "__main__":
    main()
