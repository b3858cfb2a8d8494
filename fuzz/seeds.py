#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the repository's own fixtures.

    python3 fuzz/seeds.py [CORPUS_DIR]      (default fuzz/corpus; scripts/fuzz.sh runs it)

Seeds are derived at run time, never committed, so a new fixture is a new seed:
- adapter_<source>: every case of crates/ingest/src/fixtures/<source>/cases.json, each
  delivery alone and the whole case as one input, in the delivery format of
  fuzz/src/lib.rs (headers, a blank line, the body; deliveries joined by SEPARATOR);
- ndjson: the native event samples of docs/ and tests, and the NDJSON fixtures;
- pack: the manifests of the pack crate's tests and docs/packs.md, alone and in an archive;
- policy: the embedded default policy and the TOML examples of docs/policy.md;
- llm_answer: valid and near-valid answers about the trajectory of fuzz/src/lib.rs, bare
  and inside a chat-completions reply.

A file that already exists is left alone (a corpus only grows).
"""

import hashlib
import json
import pathlib
import re
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "corpus"
SEPARATOR = b"\n\x1e\n"
SOURCES = ["github", "github-audit", "gitlab", "n8n", "make", "vault", "cloudtrail", "okta", "openai",
           "claude-code", "cursor", "otlp-logs", "otlp-traces"]
# The OTLP receivers read a body by its content type: payload files are seeded as JSON.
PAYLOAD_HEADERS = {"otlp-logs": b"content-type: application/json\n", "otlp-traces": b"content-type: application/json\n"}


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    p = d / ("seed-" + hashlib.sha1(data).hexdigest())
    if not p.exists():
        p.write_bytes(data)


def body(source, spec):
    """The body of a delivery, as crates/ingest/src/tables.rs builds it."""
    fixtures = ROOT / "crates/ingest/src/fixtures" / source
    if isinstance(spec, str):
        return (fixtures / spec).read_bytes()
    if "file" in spec:
        data = body(source, spec["file"])
        if "remove" in spec:
            doc = json.loads(data)
            parent, key = spec["remove"].rsplit("/", 1)
            node = doc
            for part in [p for p in parent.split("/") if p]:
                node = node[int(part)] if isinstance(node, list) else node[part]
            node.pop(key, None)
            data = json.dumps(doc).encode()
        return data + spec.get("append", "").encode()
    if "json" in spec:
        return json.dumps(spec["json"]).encode()
    return spec["text"].encode()


def delivery(source, d):
    head = "".join(f"{k}: {v}\n" for k, v in d.get("headers", {}).items())
    return head.encode() + b"\n" + body(source, d["body"])


def adapters():
    for source in SOURCES:
        fixtures = ROOT / "crates/ingest/src/fixtures" / source
        target = source.replace("-", "_")
        for case in json.loads((fixtures / "cases.json").read_text()):
            parts = [delivery(source, d) for d in case["deliveries"]]
            for p in parts:
                write(f"adapter_{target}", p)
            if len(parts) > 1:
                write(f"adapter_{target}", SEPARATOR.join(parts[:8]))
        for f in sorted(fixtures.iterdir()):
            if f.name != "cases.json":
                write(f"adapter_{target}", PAYLOAD_HEADERS.get(source, b"") + b"\n" + f.read_bytes())


EVENT = {
    "id": "a", "time": "2026-11-25T10:00:00Z", "source": "github",
    "actor": {"id": "u", "type": "human", "display": "U"}, "system": "acme/api",
    "action": "git.push", "resource": "refs/heads/main", "environment": "prod",
    "destination": "files.example.com", "volume": {"rows": 10, "bytes": 2048},
    "attributes": {"branch": "main", "nested": {"a": [1, 2, {"b": "c"}]},
                   "token": "ghp_0123456789abcdefghijklmnopqrstuvwxyz"},
}


def native():
    one = json.dumps(EVENT)
    two = json.dumps(dict(EVENT, id="b", action="data.export"))
    write("ndjson", one)
    write("ndjson", f"[{one},{two}]")
    write("ndjson", f"{one}\n\n{two}\r\n{{broken\n")
    write("ndjson", json.dumps(dict(EVENT, attributes={"plumbline.verified_by": "github"})))
    for f in ["vault/audit.log", "n8n/n8nEventLog.log"]:
        write("ndjson", (ROOT / "crates/ingest/src/fixtures" / f).read_bytes())


def toml_blocks(markdown):
    return re.findall(r"```toml\n(.*?)```", markdown, re.S)




def archive(files):
    out = bytearray(b"plumbline-pack 1\n")
    for path, data in files:
        p = path.encode()
        out += struct.pack(">H", len(p)) + p + struct.pack(">Q", len(data)) + data
    return bytes(out)


def packs():
    # The manifest of the pack crate's own tests, and those of docs/packs.md.
    tested = re.findall(r'const GOOD: &str = r#"(.*?)"#;',
                        (ROOT / "crates/pack/src/manifest.rs").read_text(), re.S)
    manifests = tested + [b for b in toml_blocks((ROOT / "docs/packs.md").read_text())
                          if "[[detectors]]" in b]
    for m in manifests:
        write("pack", m)
        write("pack", archive([("pack.toml", m.encode()), ("pack.sig", b"\x00" * 64),
                               ("components/big.wasm", b"\x00asm\x01\x00\x00\x00"),
                               ("fixtures/big/a.json", b'{"events": []}')]))


def policies():
    write("policy", (ROOT / "crates/policy/src/default_policy.toml").read_text())
    for block in toml_blocks((ROOT / "docs/policy.md").read_text()):
        write("policy", block)


def answers():
    ok = {"narrative": "Ada was granted export rights, then exported 48000 rows.", "risk": 2,
          "signals": ["exfil.large_export_new_destination"],
          "reasons": [{"reason": "grant then export", "event_ids": ["s1", "s4"]}],
          "next_step": "Ask Ada why."}
    bad = dict(ok, reasons=[{"reason": "r", "event_ids": ["s9"]}])
    for a in [ok, bad, dict(ok, risk=4)]:
        text = json.dumps(a)
        write("llm_answer", text)
        write("llm_answer", f"```json\n{text}\n```")
        write("llm_answer", json.dumps({"choices": [{"message": {"content": text},
                                                     "finish_reason": "stop"}]}))
    write("llm_answer", json.dumps({"choices": [{"message": {"refusal": "no"}}]}))


adapters()
native()
packs()
policies()
answers()
print(f"seeds: {sum(1 for _ in OUT.rglob('seed-*'))} in {OUT}")
