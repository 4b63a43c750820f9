"""What a plan shows of a manifest that a null_resource applies with kubectl.

A null_resource's plan shows only its triggers. A sha1 alone tells a reviewer that a manifest
changed, not how; so the manifest's text is a trigger too, and Terraform renders a changed
multi-line string as a line diff (`-   cpu: 100m` / `+   cpu: 777m`) in `cdktf diff`,
`terraform plan` and Terraform Cloud alike. The sha1 stays the trigger of record; the text
changes exactly when it does, so it never adds a replacement of its own.

Large upstream files (CRDs) would bury the plan, so they show only their digest and file name.
"""

from __future__ import annotations

import unicodedata


def terraform_literal(text: str) -> str:
    """`text` as a Terraform JSON string whose value is `text` itself.

    Terraform reads every JSON string as a template: `${` and `%{` start an expression or a
    directive, `$${` and `%%{` are their escapes. Escaping each occurrence (a manifest's own
    `$${` becomes `$$${`, which Terraform reads back as `$${`) keeps every byte literal.
    """
    return text.replace("${", "$${").replace("%{", "%%{")


def manifest_triggers(data: bytes, sha1: str) -> dict[str, str]:
    """Triggers for a manifest applied from `data`: its sha1, and its text for the plan.

    Terraform keeps strings as NFC-normalized Unicode, so text that is not valid UTF-8 in NFC
    could not come back byte for byte from the state; such a manifest shows only its sha1.
    """
    triggers = {"manifest_sha1": sha1}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return triggers
    if unicodedata.is_normalized("NFC", text):
        triggers["manifest"] = terraform_literal(text)
    return triggers


def manifest_file_triggers(relative: str, sha1: str) -> dict[str, str]:
    """Triggers for a large file shipped under manifests/: its sha1 and its name only."""
    return {"manifest_sha1": sha1, "manifest_file": terraform_literal(relative)}
