"""Provenance: which code, data and protocol made every number on the page, read from each run record
(its environment, identity, protocol and configuration as the runner stored them)."""
from __future__ import annotations

import hashlib
import json

from ..results.record import RunRecord
from .sections import esc

NOT_RECORDED = "not recorded"


def short_hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def text(value) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return NOT_RECORDED
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def run_row(record: RunRecord) -> dict[str, str]:
    data = record.data
    env, identity = as_dict(data.get("environment")), as_dict(data.get("identity"))
    method, dataset, config = as_dict(data.get("method")), as_dict(data.get("dataset")), as_dict(data.get("config"))
    fingerprint = as_dict(identity.get("dataset")).get("fingerprint")
    git = env.get("git_commit")
    if git and env.get("git_dirty"):
        git = f"{git} (with uncommitted changes)"
    return {
        "run": record.run_id,
        "method": f"{record.method} ({text(method.get('dist') or method.get('plugin'))})",
        "dataset": record.dataset + (f" {text(dataset['options'])}" if dataset.get("options") else ""),
        "dataset fingerprint": short_hash(fingerprint) if fingerprint is not None else NOT_RECORDED,
        "protocol": text(data.get("protocol")),
        "seed": text(config.get("seed")),
        "preset": text(config.get("preset")),
        "petbench": text(env.get("petbench")),
        "plugins": text(env.get("plugins")),
        "git commit": text(git),
        "method source": text(as_dict(identity.get("method")).get("source") or method.get("source")),
        "environment": ", ".join(f"{k} {env[k]}" for k in ("python", "torch", "numpy", "cuda", "device_name",
                                                             "platform") if env.get(k)) or NOT_RECORDED,
        "finished": text(data.get("finished_at")),
        "provenance": text(data.get("provenance")),
    }


def provenance_table(records: list[RunRecord]) -> str:
    rows = [run_row(r) for r in records]
    if not rows:
        return ""
    columns = list(rows[0])
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(f'<td class="{"missing" if row[c] == NOT_RECORDED else ""}">{esc(row[c])}</td>'
                                      for c in columns) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table class="provenance sortable" id="provenance-table"><thead><tr>{head}</tr>'
            f'</thead><tbody>{body}</tbody></table></div>')


def builder_line(command: str) -> str:
    from datetime import datetime, timezone
    from .. import __version__

    return (f"Built by petbench {__version__} on {datetime.now(timezone.utc).isoformat(timespec='seconds')} "
            f"with <code>{esc(command)}</code>.")
