# Generates flagsvc/internal/api/openapi.json, the OpenAPI document the service serves at
# /api/v1/openapi.json. Edit this file and run `python3 flagsvc/tools/openapi.py` after changing
# routes; internal/api/openapi_test.go fails while a route is not described.
import json, os
R = lambda name: {"$ref": f"#/components/schemas/{name}"}
def resp(schema=None, code="200", desc="OK"):
    r = {code: {"description": desc}}
    if schema is not None:
        r[code]["content"] = {"application/json": {"schema": schema}}
    return r
ERR = {"description": "Error", "content": {"application/json": {"schema": R("Error")}}}
def errors(*codes):
    names = {"400": "Malformed request (bad JSON, unknown field, wrong type)", "401": "Missing or invalid API token",
             "403": "The caller's role does not allow this", "404": "Not found", "409": "Conflict (duplicate key or stale version)",
             "412": "Forbidden by the resource's state (locked environment, archived flag)", "413": "Too large",
             "422": "Validation failed; the error names the field"}
    return {c: {**ERR, "description": names[c]} for c in codes}
def body(schema, required=True, ctype="application/json"):
    return {"required": required, "content": {ctype: {"schema": schema}}}
P = lambda name, desc, schema={"type": "string"}, where="path", req=True: {"name": name, "in": where, "required": req, "description": desc, "schema": schema}
project, env, flag, seg = P("project", "Project key"), P("env", "Environment key"), P("flag", "Flag key"), P("segment", "Segment key")
ifmatch = {"name": "If-Match", "in": "header", "required": False, "description": "Version the write is based on, e.g. \"3\"; a newer version answers 409", "schema": {"type": "string"}}
def op(summary, tag, params=(), req=None, ok=None, okcode="200", errs=("400", "401", "403", "404"), desc=None):
    o = {"summary": summary, "tags": [tag], "parameters": list(params), "responses": {**resp(ok, okcode, "OK" if okcode != "204" else "No content"), **errors(*errs)}}
    if desc: o["description"] = desc
    if req is not None: o["requestBody"] = req
    return o
items = lambda s: {"type": "object", "properties": {"items": {"type": "array", "items": s}}}
W = ("400", "401", "403", "404", "409", "412", "422")
paths = {}
def add(path, method, o): paths.setdefault(path, {})[method] = o

add("/api/v1/openapi.json", "get", {"summary": "This document", "tags": ["meta"], "security": [], "responses": resp({"type": "object"})})
add("/api/v1/me", "get", op("The caller: organization, identity, role, scope and the expiry of its token", "organization", ok=R("Me"),
    desc="`token.expires_at` is when the token making this request expires (null: never); POST /tokens refuses a token that would expire later. The token itself is never returned."))
add("/api/v1/members", "get", op("List members", "organization", ok=items(R("Member"))))
add("/api/v1/members", "post", op("Add a member (creates the user if new)", "organization", req=body(R("MemberInput")), ok=R("Member"), okcode="201", errs=W))
add("/api/v1/members/{user}", "patch", op("Change a member's role", "organization", [P("user", "User id")], body({"type": "object", "properties": {"role": R("Role"), "project_ids": {"type": "array", "items": {"type": "string"}}}}), R("Member"), errs=W))
add("/api/v1/members/{user}", "delete", op("Remove a member (never the last owner)", "organization", [P("user", "User id")], okcode="204", errs=W))
add("/api/v1/tokens", "get", op("List API tokens (admins: all; others: their own)", "tokens", ok=items(R("APIToken"))))
add("/api/v1/tokens", "post", op("Create an API token; the secret is in the response only", "tokens", req=body(R("TokenInput")), ok=R("APIToken"), okcode="201", errs=W))
add("/api/v1/tokens/{token}", "delete", op("Revoke a token (with cascade=true, also every token created with it, directly or through others)", "tokens", [P("token", "Token id"), P("cascade", "Also revoke every live token created with this one, directly or through others (each names its maker in created_by_token)", {"type": "boolean"}, "query", False)], okcode="204"))
add("/api/v1/tokens/{token}/descendants", "get", op("List the live tokens created with a token, directly or through others: what revoking it with cascade=true revokes too (whoever may revoke the token may list them)", "tokens", [P("token", "Token id")], ok=items(R("APIToken"))))
af = [P("actor", "Actor id", where="query", req=False), P("action", "Action, or a prefix ending in '.' (flag_config.)", where="query", req=False),
      P("resource_type", "Resource type", where="query", req=False), P("resource", "Resource id or key", where="query", req=False),
      P("project", "Project key", where="query", req=False), P("from", "From (RFC 3339)", {"type": "string", "format": "date-time"}, "query", False),
      P("to", "To, exclusive (RFC 3339)", {"type": "string", "format": "date-time"}, "query", False)]
add("/api/v1/audit", "get", op("Query the audit log, newest first", "audit", af + [P("limit", "Page size (max 1000)", {"type": "integer"}, "query", False), P("before_id", "Entries older than this id", {"type": "integer"}, "query", False)],
    ok={"type": "object", "properties": {"items": {"type": "array", "items": R("AuditEntry")}, "next_before_id": {"type": "integer"}}}))
add("/api/v1/audit/export", "get", {**op("Export the audit log (streamed)", "audit", af + [P("format", "json (JSON lines) or csv", {"enum": ["json", "csv"]}, "query", False)]),
    "responses": {"200": {"description": "Streamed export", "content": {"application/x-ndjson": {"schema": R("AuditEntry")}, "text/csv": {"schema": {"type": "string"}}}}, **errors("400", "401", "403")}})

add("/api/v1/projects", "get", op("List projects with their environments", "projects", ok=items(R("Project"))))
add("/api/v1/projects", "post", op("Create a project (with development, staging, production)", "projects", req=body(R("ProjectInput")), ok=R("Project"), okcode="201", errs=W))
add("/api/v1/projects/{project}", "get", op("Get a project", "projects", [project], ok=R("Project")))
add("/api/v1/projects/{project}", "patch", op("Edit a project (fields left out keep their values)", "projects", [project], body(R("ProjectPatch")), R("Project"), errs=W))
add("/api/v1/projects/{project}", "delete", op("Delete a project and everything in it", "projects", [project], okcode="204"))

add("/api/v1/projects/{project}/environments", "get", op("List environments", "environments", [project], ok=items(R("Environment"))))
add("/api/v1/projects/{project}/environments", "post", op("Create an environment", "environments", [project], body(R("EnvironmentInput")), R("Environment"), "201", W))
EP = "/api/v1/projects/{project}/environments/{env}"
add(EP, "get", op("Get an environment", "environments", [project, env], ok=R("Environment")))
add(EP, "patch", op("Edit an environment (name, color, critical, position)", "environments", [project, env], body(R("EnvironmentInput")), R("Environment"), errs=W))
add(EP, "delete", op("Delete an environment", "environments", [project, env], okcode="204", errs=W))
add(EP + "/clone", "post", op("Clone an environment: every flag configuration and segment, in one transaction", "environments", [project, env], body(R("EnvironmentInput")), R("Environment"), "201", W))
add(EP + "/lock", "put", op("Lock (rejecting flag changes) or unlock an environment", "environments", [project, env], body({"type": "object", "required": ["locked"], "properties": {"locked": {"type": "boolean"}, "reason": {"type": "string"}}}), R("Environment"), errs=W))
add(EP + "/ruleset", "get", op("Preview the compiled ruleset SDKs receive (without key hashes)", "environments", [project, env], ok={"$ref": "https://switchyard.dev/schemas/ruleset.schema.json"}))
add(EP + "/sdk-keys", "get", op("List SDK keys (client keys in full, server keys by prefix)", "sdk-keys", [project, env, P("include_revoked", "Include revoked and expired keys", {"type": "boolean"}, "query", False)], ok=items(R("SDKKey"))))
add(EP + "/sdk-keys", "post", op("Create an SDK key; a server key is shown only in this response", "sdk-keys", [project, env], body({"type": "object", "required": ["kind"], "properties": {"kind": {"enum": ["server", "client"]}, "name": {"type": "string"}}}), R("SDKKey"), "201", W))
add(EP + "/sdk-keys/{key}/rotate", "post", op("Rotate a key: a new key now, the old one valid for the grace period (default 24h)", "sdk-keys", [project, env, P("key", "SDK key id")], body({"type": "object", "properties": {"grace": {"type": "string", "example": "24h"}}}, False), R("SDKKey"), "201", W))
add(EP + "/sdk-keys/{key}", "delete", op("Revoke a key now", "sdk-keys", [project, env, P("key", "SDK key id")], okcode="204"))
add(EP + "/segments", "get", op("List segments", "segments", [project, env], ok=items(R("Segment"))))
add(EP + "/segments", "post", op("Create a segment", "segments", [project, env], body(R("SegmentInput")), R("Segment"), "201", W))
SP = EP + "/segments/{segment}"
add(SP, "get", op("Get a segment (member lists inline when small)", "segments", [project, env, seg], ok=R("Segment")))
add(SP, "put", op("Replace a segment's rules (and member lists when given)", "segments", [project, env, seg, ifmatch], body(R("SegmentInput")), R("Segment"), errs=W))
add(SP, "delete", op("Delete a segment (refused while flags or segments use it)", "segments", [project, env, seg, ifmatch], okcode="204", errs=W))
add(SP + "/import", "post", op("Import keys from CSV (key or context_kind,key per line; streamed; at most 1,000,000 keys per import (413) and per segment, included and excluded together (422 naming body))", "segments",
    [project, env, seg, {**ifmatch, "description": "Segment version the import is based on (the CSV body has no version field), e.g. \"3\"; a newer version answers 409"}, P("list", "included or excluded", {"enum": ["included", "excluded"]}, "query", False), P("context_kind", "Kind for one-column rows (default user)", where="query", req=False), P("mode", "add (default) or replace", {"enum": ["add", "replace"]}, "query", False)],
    body({"type": "string"}, ctype="text/csv"), {"type": "object", "properties": {"imported": {"type": "integer"}, "segment": R("Segment")}}, errs=W + ("413",)))

FL = "/api/v1/projects/{project}/flags"
add(FL, "get", op("List flags: search, filter, sort, cursor pagination", "flags", [project,
    P("q", "Full-text search over key, name and description (prefix match per word)", where="query", req=False), P("tag", "Tag", where="query", req=False),
    P("owner", "Owner user id", where="query", req=False), P("kind", "Kind", {"enum": ["boolean", "string", "number", "json"]}, "query", False),
    P("lifecycle", "active, deprecated, archived or all (default: all but archived)", where="query", req=False),
    P("environment", "Environment key, for the on filter", where="query", req=False), P("on", "On/off in the environment", {"type": "boolean"}, "query", False),
    P("sort", "key, name, created_at, updated_at; prefix - for descending", where="query", req=False), P("cursor", "From next_cursor", where="query", req=False),
    P("limit", "Page size (max 500)", {"type": "integer"}, "query", False)], ok=R("FlagPage")))
add(FL, "post", op("Create a flag (default configuration in every environment)", "flags", [project], body(R("FlagInput")), R("FlagDetail"), "201", W,
    desc="Every environment gets a configuration that is off, serves the last variation when off and the first when on (fallthrough), unless `defaults` picks them: with variations [off, on] a new flag serves \"on\" while off, so list the on variation first or send defaults."))
add(FL + "/bulk", "post", op("Archive, unarchive, tag, untag or delete many flags in one transaction", "flags", [project], body(R("BulkInput")), {"type": "object", "properties": {"action": {"type": "string"}, "updated": {"type": "array", "items": {"type": "string"}}}}, errs=W))
FP = FL + "/{flag}"
add(FP, "get", op("Get a flag with its configuration in every environment", "flags", [project, flag], ok=R("FlagDetail")))
add(FP, "patch", op("Edit a flag definition (key and kind are immutable)", "flags", [project, flag, ifmatch], body(R("FlagUpdate")), R("FlagDetail"), errs=W))
add(FP, "delete", op("Delete a flag for good", "flags", [project, flag, ifmatch], okcode="204", errs=W))
CP = FP + "/environments/{env}"
add(CP, "get", op("Get a flag's configuration in an environment", "targeting", [project, flag, env], ok=R("FlagEnvironment")))
add(CP, "put", op("Replace a flag's configuration in an environment", "targeting", [project, flag, env, ifmatch], body(R("FlagConfigInput")), R("FlagEnvironment"), errs=W))
add(CP, "patch", op("Merge-patch (RFC 7396) a flag's configuration; top-level version and comment are metadata", "targeting", [project, flag, env, ifmatch], body({"type": "object"}, ctype="application/merge-patch+json"), R("FlagEnvironment"), errs=W))
add(CP + "/toggle", "post", op("Turn a flag on or off", "targeting", [project, flag, env, ifmatch], body({"type": "object", "required": ["on"], "properties": {"on": {"type": "boolean"}, "version": {"type": "integer"}, "comment": {"type": "string"}}}), R("FlagEnvironment"), errs=W))
add(CP + "/kill", "post", op("Kill switch: turn the flag off now, with a reason (audited)", "targeting", [project, flag, env], body({"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}), R("FlagEnvironment"), errs=W))
add(CP + "/rollback", "post", op("Make an earlier version current again, as a new version", "targeting", [project, flag, env, ifmatch], body({"type": "object", "required": ["to_version"], "properties": {"to_version": {"type": "integer"}, "version": {"type": "integer"}, "comment": {"type": "string"}}}), R("FlagEnvironment"), errs=W))
add(CP + "/history", "get", op("Versions of the configuration, newest first, with diffs", "targeting", [project, flag, env, P("before", "Versions older than this", {"type": "integer"}, "query", False), P("limit", "Page size (max 500)", {"type": "integer"}, "query", False)],
    ok={"type": "object", "properties": {"items": {"type": "array", "items": R("ConfigVersion")}, "next_before": {"type": "integer"}}}))

MP = "/api/v1/projects/{project}/metrics"
metric = P("metric", "Metric key")
add(MP, "get", op("List the metric catalog", "metrics", [project, P("include_archived", "Include archived metrics", {"type": "boolean"}, "query", False)], ok=items(R("Metric"))))
add(MP, "post", op("Define a metric", "metrics", [project], body(R("Metric")), R("Metric"), "201", W,
    desc="archived, created_at and updated_at are set by the server: sending any of them, whatever its value (false and null included), is 422 naming it. DELETE archives."))
add(MP + "/{metric}", "get", op("Get a metric", "metrics", [project, metric], ok=R("Metric")))
add(MP + "/{metric}", "put", op("Replace a metric's definition (a new version; key and kind are immutable)", "metrics", [project, metric, ifmatch], body(R("Metric")), R("Metric"), errs=W,
    desc="As for POST, archived, created_at and updated_at are refused (422 naming the field) whatever their value; version is the version the write is based on."))
add(MP + "/{metric}", "delete", op("Archive a metric (experiments keep their recorded version; project admins and up)", "metrics", [project, metric], okcode="204", errs=W))
add(MP + "/{metric}/versions", "get", op("Every version of a metric's definition, newest first", "metrics", [project, metric], ok=items({"type": "object", "properties": {"version": {"type": "integer"}, "definition": R("Metric"), "actor": R("Actor"), "created_at": {"type": "string"}}})))
XP = "/api/v1/projects/{project}/experiments"
exp = P("experiment", "Experiment key")
status = P("status", "draft, running, stopped or concluded", {"enum": ["draft", "running", "stopped", "concluded"]}, "query", False)
add("/api/v1/experiments", "get", op("Experiments of every project the caller can read (the results workers list running ones, and recently stopped ones)", "experiments",
    [status, P("stopped_after", "RFC 3339 time: only experiments stopped at or after it (a malformed time is 400 naming stopped_after)", {"type": "string", "format": "date-time"}, "query", False)],
    ok=items(R("Experiment")), errs=("400", "401", "403", "422")))
add(XP, "get", op("List a project's experiments", "experiments", [project, status, P("environment", "Environment key", where="query", req=False)], ok=items(R("Experiment"))))
add(XP, "post", op("Create a draft experiment on a flag in an environment", "experiments", [project], body(R("ExperimentInput")), R("Experiment"), "201", W))
add(XP + "/{experiment}", "get", op("Get an experiment", "experiments", [project, exp], ok=R("Experiment")))
add(XP + "/{experiment}", "patch", op("Edit an experiment (drafts: anything; started: name, hypothesis, owner, duration, secondary metrics; the rest may be sent back unchanged)", "experiments", [project, exp, ifmatch], body(R("ExperimentUpdate")), R("Experiment"), errs=W))
add(XP + "/{experiment}", "delete", op("Delete a draft", "experiments", [project, exp], okcode="204", errs=W))
add(XP + "/{experiment}/start", "post", op("Start: the flag serves the experiment's split (an audited flag change); guardrails activate", "experiments", [project, exp], ok=R("Experiment"), errs=W))
add(XP + "/{experiment}/stop", "post", op("Stop: results freeze; the flag keeps serving the split", "experiments", [project, exp], ok=R("Experiment"), errs=W))
add(XP + "/{experiment}/conclude", "post", op("Conclude with a decision: ship a variation, roll back to control, or inconclusive", "experiments", [project, exp], body({"type": "object", "required": ["outcome", "rationale"], "properties": {"outcome": {"enum": ["ship", "rollback", "inconclusive"]}, "variation": {"type": "string"}, "rationale": {"type": "string", "minLength": 1}}}), R("Experiment"), errs=W))
GP = EP + "/guardrails"
gid = P("guardrail", "Guardrail id")
add("/api/v1/guardrails", "get", op("Guardrails of every project the caller can read (the jobs service sweeps the active ones)", "guardrails", [P("status", "active, breached or disabled", {"enum": ["active", "breached", "disabled"]}, "query", False)], ok=items(R("Guardrail"))))
add(GP, "get", op("List an environment's guardrails", "guardrails", [project, env], ok=items(R("Guardrail"))))
add(GP, "post", op("Declare a guardrail on a flag's percentage rollout", "guardrails", [project, env], body({"type": "object", "required": ["flag", "metric", "tolerance", "control", "treatments"], "properties": {"flag": {"type": "string"}, "metric": {"type": "string"}, "tolerance": {"type": "number"}, "action": {"enum": ["alert", "rollback"]}, "control": {"type": "string"}, "treatments": {"type": "array", "items": {"type": "string"}}}}), R("Guardrail"), "201", W,
    desc="The flag must have a percentage rollout (no experiment_key) in the environment, on the fallthrough or a rule, whose variations include the control and each treatment (weights may still be 0): the monitor compares the contexts that rollout splits between them. Else 422 naming flag, control or treatments[i]. One active guardrail per flag, environment and metric: a second is 409 naming metric (disable the first with DELETE to replace it; disabled and breached ones do not count)."))
add(GP + "/{guardrail}", "delete", op("Disable a guardrail", "guardrails", [project, env, gid], okcode="204", errs=W))
add(GP + "/{guardrail}/breach", "post", op("Report a breach (recorded once; rollback guardrails roll the flag back as flag_config.auto_rollback)", "guardrails", [project, env, gid], body({"type": "object", "required": ["effect", "interval", "p_value"], "properties": {"effect": {"type": "number"}, "interval": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}, "p_value": {"type": "number"}, "absolute": {"type": "boolean", "description": "effect and interval are a difference of means (the control mean is 0), not relative"}}}), R("Guardrail"), errs=W))

RS = "https://switchyard.dev/schemas/ruleset.schema.json#/$defs/"
S = {
 "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
    "code": {"type": "string", "enum": ["invalid_argument", "validation_failed", "not_found", "conflict", "failed_precondition", "unauthenticated", "permission_denied", "rate_limited", "unavailable", "too_large", "internal", "method_not_allowed"]},
    "message": {"type": "string"}, "field": {"type": "string", "example": "rules[2].clauses[0].values"}}}}},
 "Role": {"enum": ["owner", "admin", "project_admin", "developer", "viewer"]},
 "Actor": {"type": "object", "properties": {"type": {"enum": ["user", "token", "system"]}, "id": {"type": "string"}, "name": {"type": "string"}}},
 "Me": {"type": "object", "properties": {"organization": {"type": "object"}, "actor": R("Actor"), "role": R("Role"), "project_ids": {"type": "array", "items": {"type": "string"}}, "scope": {"type": "object"},
        "token": {"type": "object", "required": ["expires_at"], "properties": {"expires_at": {"type": "string", "format": "date-time", "nullable": True, "description": "When the token making this request expires; null if it does not"}}}}},
 "Member": {"type": "object", "properties": {"id": {"type": "string"}, "email": {"type": "string"}, "name": {"type": "string"}, "role": R("Role"), "project_ids": {"type": "array", "items": {"type": "string"}}, "created_at": {"type": "string", "format": "date-time"}}},
 "MemberInput": {"type": "object", "required": ["email", "role"], "additionalProperties": False, "properties": {"email": {"type": "string"}, "name": {"type": "string"}, "role": R("Role"), "project_ids": {"type": "array", "items": {"type": "string"}}}},
 "APIToken": {"type": "object", "properties": {"id": {"type": "string"}, "token_id": {"type": "string"}, "kind": {"enum": ["personal", "service"]}, "name": {"type": "string"}, "user_id": {"type": "string"}, "role": R("Role"), "project_id": {"type": "string"}, "environment_id": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"}, "last_used_at": {"type": "string", "format": "date-time"}, "revoked_at": {"type": "string", "format": "date-time"}, "created_at": {"type": "string", "format": "date-time"}, "created_by_token": {"type": "string", "description": "Id of the token this one was created with (DELETE /tokens/{that}?cascade=true revokes this one too)"}, "token": {"type": "string", "description": "The secret; only in the creation response"}}},
 "TokenInput": {"type": "object", "required": ["kind", "name"], "additionalProperties": False, "properties": {"kind": {"enum": ["personal", "service"]}, "name": {"type": "string"}, "role": R("Role"), "project": {"type": "string", "description": "Project key scope (service tokens)"}, "environment": {"type": "string", "description": "Environment key scope (service tokens)"}, "expires_in": {"type": "string", "example": "720h"}}},
 "AuditEntry": {"type": "object", "properties": {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}, "actor": R("Actor"), "action": {"type": "string"}, "resource_type": {"type": "string"}, "resource_id": {"type": "string"}, "resource_key": {"type": "string"}, "project_id": {"type": "string"}, "environment_id": {"type": "string"}, "before": {}, "after": {}, "comment": {"type": "string"}, "ip": {"type": "string"}, "user_agent": {"type": "string"}}},
 "Project": {"type": "object", "properties": {"id": {"type": "string"}, "key": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"}, "environments": {"type": "array", "items": R("Environment")}, "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}}},
 "ProjectInput": {"type": "object", "required": ["key", "name"], "additionalProperties": False, "properties": {"key": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"}}},
 "ProjectPatch": {"type": "object", "additionalProperties": False, "properties": {"key": {"type": "string", "description": "if sent, must be the project's key (keys cannot change)"}, "name": {"type": "string"}, "description": {"type": "string"}}},
 "Environment": {"type": "object", "properties": {"id": {"type": "string"}, "project_id": {"type": "string"}, "project_key": {"type": "string"}, "key": {"type": "string"}, "name": {"type": "string"}, "color": {"type": "string"}, "critical": {"type": "boolean"}, "locked": {"type": "boolean"}, "lock_reason": {"type": "string"}, "position": {"type": "integer"}, "ruleset_version": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}}},
 "EnvironmentInput": {"type": "object", "additionalProperties": False, "properties": {"key": {"type": "string"}, "name": {"type": "string"}, "color": {"type": "string", "example": "#3b82f6"}, "critical": {"type": "boolean"}, "position": {"type": "integer"}}},
 "SDKKey": {"type": "object", "properties": {"id": {"type": "string"}, "environment_id": {"type": "string"}, "kind": {"enum": ["server", "client"]}, "name": {"type": "string"}, "prefix": {"type": "string"}, "key": {"type": "string", "description": "Client keys always; server keys only at creation"}, "expires_at": {"type": "string", "format": "date-time"}, "revoked_at": {"type": "string", "format": "date-time"}, "rotated_from": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"}}},
 "Segment": {"type": "object", "properties": {"id": {"type": "string"}, "environment_id": {"type": "string"}, "key": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"}, "rules": {"type": "array", "items": {"$ref": RS + "segment/properties/rules/items"}}, "version": {"type": "integer"}, "included": {"$ref": RS + "segment_targets"}, "excluded": {"$ref": RS + "segment_targets"}, "included_count": {"type": "integer"}, "excluded_count": {"type": "integer"}}},
 "SegmentInput": {"type": "object", "required": ["key"], "additionalProperties": False, "properties": {"key": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"}, "rules": {"type": "array", "items": {"$ref": RS + "segment/properties/rules/items"}}, "included": {"$ref": RS + "segment_targets"}, "excluded": {"$ref": RS + "segment_targets"}, "version": {"type": "integer"}}},
 "Variation": {"type": "object", "required": ["key", "value"], "properties": {"key": {"type": "string"}, "value": {}, "name": {"type": "string"}, "description": {"type": "string"}}},
 "Flag": {"type": "object", "properties": {"id": {"type": "string"}, "project_id": {"type": "string"}, "key": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}, "owner_id": {"type": "string"}, "kind": {"enum": ["boolean", "string", "number", "json"]}, "variations": {"type": "array", "items": R("Variation")}, "temporary": {"type": "boolean"}, "removal_date": {"type": "string", "format": "date"}, "lifecycle": {"enum": ["active", "deprecated", "archived"]}, "client_side": {"type": "boolean"}, "version": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}, "environments": {"type": "object", "additionalProperties": {"type": "object", "properties": {"on": {"type": "boolean"}, "version": {"type": "integer"}}}}}},
 "FlagDetail": {"allOf": [R("Flag"), {"type": "object", "properties": {"configs": {"type": "object", "additionalProperties": R("FlagEnvironment")}}}]},
 "FlagPage": {"type": "object", "properties": {"items": {"type": "array", "items": R("Flag")}, "next_cursor": {"type": "string"}, "total": {"type": "integer"}}},
 "FlagInput": {"type": "object", "required": ["key", "kind", "variations"], "additionalProperties": False, "properties": {"key": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}, "owner_id": {"type": "string"}, "kind": {"enum": ["boolean", "string", "number", "json"]}, "variations": {"type": "array", "minItems": 2, "items": R("Variation")}, "temporary": {"type": "boolean"}, "removal_date": {"type": "string", "format": "date"}, "client_side": {"type": "boolean"}, "defaults": {"type": "object", "properties": {"on_variation": {"type": "string"}, "off_variation": {"type": "string"}}}}},
 "FlagUpdate": {"type": "object", "additionalProperties": False, "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}, "owner_id": {"type": "string"}, "variations": {"type": "array", "items": R("Variation")}, "temporary": {"type": "boolean"}, "removal_date": {"type": "string"}, "lifecycle": {"enum": ["active", "deprecated", "archived"]}, "client_side": {"type": "boolean"}, "version": {"type": "integer"}, "comment": {"type": "string"}}},
 "BulkInput": {"type": "object", "required": ["action", "keys"], "additionalProperties": False, "properties": {"action": {"enum": ["archive", "unarchive", "tag", "untag", "delete"]}, "keys": {"type": "array", "items": {"type": "string"}, "maxItems": 1000}, "tags": {"type": "array", "items": {"type": "string"}}}},
 "FlagConfig": {"type": "object", "properties": {"on": {"type": "boolean"}, "off_variation": {"type": "string"}, "prerequisites": {"$ref": RS + "flag/properties/prerequisites"}, "targets": {"$ref": RS + "flag/properties/targets"}, "rules": {"$ref": RS + "flag/properties/rules"}, "fallthrough": {"$ref": RS + "serve"}, "salt": {"type": "string"}}},
 "FlagConfigInput": {"allOf": [R("FlagConfig"), {"type": "object", "properties": {"version": {"type": "integer"}, "comment": {"type": "string"}}}]},
 "FlagEnvironment": {"allOf": [R("FlagConfig"), {"type": "object", "properties": {"flag_key": {"type": "string"}, "environment_key": {"type": "string"}, "version": {"type": "integer"}, "updated_at": {"type": "string", "format": "date-time"}}}]},
 "ConfigVersion": {"type": "object", "properties": {"version": {"type": "integer"}, "config": R("FlagConfig"), "change": {"enum": ["create", "update", "toggle", "kill", "rollback", "clone", "scheduled"]}, "comment": {"type": "string"}, "diff": {"type": "array", "description": "RFC 6902 JSON Patch from the previous version", "items": {"type": "object"}}, "actor": R("Actor"), "created_at": {"type": "string", "format": "date-time"}}},
 "Metric": {"type": "object", "required": ["key", "kind"], "properties": {"key": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"}, "kind": {"enum": ["proportion", "mean", "sum", "count", "ratio"]}, "event_key": {"type": "string"}, "numerator": {"type": "string"}, "denominator": {"type": "string"}, "window": {"type": "object", "description": "Not for ratio metrics (their parts' windows apply)", "properties": {"start": {"type": "string", "example": "0s"}, "end": {"type": "string", "example": "168h"}}}, "filters": {"type": "array", "description": "Not for ratio metrics (their parts' filters apply)", "items": {"type": "object", "properties": {"property": {"type": "string"}, "op": {"enum": ["eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "contains"]}, "values": {"type": "array", "items": {}}}}}, "winsorize": {"type": "object", "properties": {"type": {"enum": ["none", "absolute", "percentile"]}, "lower": {"type": "number"}, "upper": {"type": "number"}}}, "direction": {"enum": ["increase", "decrease"]}, "min_sample_size": {"type": "integer"}, "cuped_preperiod": {"type": "string", "example": "168h", "description": "CUPED look-back before first exposure; omitted: 168h (ratio: 0s); 0s turns CUPED off"}, "version": {"type": "integer", "readOnly": True}, "archived": {"type": "boolean", "readOnly": True}, "created_at": {"type": "string", "format": "date-time", "readOnly": True}, "updated_at": {"type": "string", "format": "date-time", "readOnly": True}}},
 "Experiment": {"type": "object", "properties": {"id": {"type": "string"}, "key": {"type": "string"}, "name": {"type": "string"}, "hypothesis": {"type": "string"}, "owner_id": {"type": "string"}, "project": {"type": "string"}, "environment": {"type": "string"}, "environment_id": {"type": "string"}, "flag": {"type": "string"}, "status": {"enum": ["draft", "running", "stopped", "concluded"]}, "control": {"type": "string"}, "variations": {"type": "array", "items": {"type": "object", "properties": {"variation": {"type": "string"}, "weight": {"type": "integer"}}}}, "context_kind": {"type": "string"}, "salt": {"type": "string"}, "metrics": {"type": "object", "properties": {"primary": {"type": "array", "items": {"type": "string"}}, "secondary": {"type": "array", "items": {"type": "string"}}, "guardrails": {"type": "array", "items": {"type": "object", "properties": {"metric": {"type": "string"}, "tolerance": {"type": "number"}, "action": {"enum": ["alert", "rollback"]}}}}}}, "analysis": {"type": "object", "properties": {"engine": {"enum": ["frequentist", "bayesian"]}, "alpha": {"type": "number"}, "sided": {"enum": ["two_sided", "greater", "less"]}, "sequential": {"type": "boolean"}, "sequential_tuning": {"type": "number"}, "cuped": {"type": "boolean"}, "correction": {"enum": ["none", "holm", "bh"]}}}, "planned_duration": {"type": "string"}, "started_at": {"type": "string", "format": "date-time", "nullable": True}, "stopped_at": {"type": "string", "format": "date-time", "nullable": True}, "concluded_at": {"type": "string", "format": "date-time", "nullable": True}, "decision": {"type": "object", "nullable": True, "properties": {"outcome": {"enum": ["ship", "rollback", "inconclusive"]}, "variation": {"type": "string"}, "rationale": {"type": "string"}, "decided_by": {"type": "string"}, "decided_at": {"type": "string", "format": "date-time"}, "flag_unchanged": {"type": "string", "description": "Set when ship or rollback left the flag as it was (its fallthrough no longer served this experiment's rollout), saying why"}}}, "metric_versions": {"type": "object", "additionalProperties": {"type": "integer"}}, "version": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}}},
 "ExperimentInput": {"type": "object", "required": ["key", "environment", "flag", "control", "variations", "metrics"], "properties": {"key": {"type": "string"}, "name": {"type": "string"}, "hypothesis": {"type": "string"}, "owner_id": {"type": "string"}, "environment": {"type": "string"}, "flag": {"type": "string"}, "control": {"type": "string"}, "variations": {"type": "array"}, "context_kind": {"type": "string"}, "salt": {"type": "string"}, "metrics": {"type": "object"}, "analysis": {"type": "object"}, "planned_duration": {"type": "string"}}},
 "ExperimentUpdate": {"type": "object", "properties": {"name": {"type": "string"}, "hypothesis": {"type": "string"}, "owner_id": {"type": "string"}, "control": {"type": "string"}, "variations": {"type": "array"}, "context_kind": {"type": "string"}, "metrics": {"type": "object"}, "analysis": {"type": "object"}, "planned_duration": {"type": "string"}, "version": {"type": "integer"}}},
 "Guardrail": {"type": "object", "properties": {"id": {"type": "string"}, "project": {"type": "string"}, "environment": {"type": "string"}, "environment_id": {"type": "string"}, "flag": {"type": "string"}, "experiment": {"type": "string"}, "metric": {"type": "string"}, "tolerance": {"type": "number"}, "action": {"enum": ["alert", "rollback"]}, "control": {"type": "string"}, "treatments": {"type": "array", "items": {"type": "string"}}, "status": {"enum": ["active", "breached", "disabled"]}, "breach": {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}, "effect": {"type": "number"}, "interval": {"type": "array", "items": {"type": "number"}}, "p_value": {"type": "number"}, "absolute": {"type": "boolean"}, "action_taken": {"enum": ["serve_control", "turn_off", "alert_only"]}}}}},
}
doc = {"openapi": "3.0.3", "info": {"title": "Switchyard flag service API", "version": "1.0.0",
  "description": "Manage organizations, projects, environments, flags, targeting, segments, SDK keys, API tokens and the audit log. Every endpoint but this document needs `Authorization: Bearer <API token>`. Errors share one shape: {\"error\":{\"code\",\"message\",\"field\"}}. Writes may carry the version they are based on (If-Match or a version field) and get 409 when it is stale. Any write may carry a comment for the audit log in `X-Switchyard-Comment` (UTF-8, percent-encoded as encodeURIComponent does it, at most 1,000 characters; 400 or 422 naming the header otherwise), recorded on every entry it writes, after the entry's own comment."},
  "servers": [{"url": "http://127.0.0.1:8080"}],
  "security": [{"bearer": []}],
  "tags": [{"name": n} for n in ["organization", "tokens", "audit", "projects", "environments", "sdk-keys", "segments", "flags", "targeting", "metrics", "experiments", "guardrails", "meta"]],
  "paths": paths, "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": S}}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "internal", "api", "openapi.json")
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
print(len(paths), sum(len(v) for v in paths.values()))
