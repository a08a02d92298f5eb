"""Reading one kubeconfig file and parsing its entries (kubeconfig.py merges the files).

Two kinds of problems, kept apart on purpose:

- the FILE's shape (not YAML, not a mapping, a list that is not a list, the same name twice
  in one list, the same extension name twice) fails the whole file, as client-go's loader;
- one ENTRY's contents (a bad field type, bad base64, an item without a usable name) are
  recorded and raised only when a context needs that entry, so one broken entry never
  hides the other forty contexts of a fan-out.
"""

from __future__ import annotations

import base64
import binascii
import os
import unicodedata
from typing import Any

import yaml

from skymagic.core.entries import ClusterInfo, ContextInfo, ExecConfig, UserInfo
from skymagic.errors import KubeconfigError

__all__ = [
    "EntryProblem",
    "check_extension_names",
    "clean_control_chars",
    "named_entries",
    "parse_cluster",
    "parse_context",
    "parse_user",
    "read_file",
]

# libyaml is ~10x faster on the big kubeconfigs cloud CLIs accumulate.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_file(path: str) -> dict[str, Any]:
    """One kubeconfig file as a mapping (``{}`` when empty); KubeconfigError names the line."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise KubeconfigError(
            f"kubeconfig {path} cannot be read ({exc.strerror or exc}); fix its permissions or "
            "remove it from KUBECONFIG",
            path=path,
        ) from None
    try:
        doc = yaml.load(data, Loader=_Loader)  # a SafeLoader: no object construction
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise KubeconfigError(
            f"kubeconfig {path} is not valid YAML{where}: {problem}; fix the file or remove it "
            "from KUBECONFIG",
            path=path,
        ) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise KubeconfigError(
            f"kubeconfig {path} must be a mapping (apiVersion, clusters, users, contexts), got "
            f"{_type_name(doc)}; is this really a kubeconfig?",
            path=path,
            field="(top level)",
        )
    return doc


def named_entries(
    path: str, doc: dict[str, Any], list_key: str, body_key: str
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """The (name, item) pairs of one list, and a warning per item that was skipped.

    An item that is not a mapping or has no usable name (``name: ""`` included) cannot be
    referenced by anything, so it is skipped with a warning instead of failing the file:
    client-go only refuses an empty context name when that context is used. The same name
    twice in one list does fail the file (client-go's "duplicate name ... in list").
    """
    items = doc.get(list_key)
    if items is None:
        return [], []
    if not isinstance(items, list):
        raise KubeconfigError(
            f"kubeconfig {path}: {list_key} must be a list of {{name, {body_key}}} entries, got "
            f"{_type_name(items)}",
            path=path,
            field=list_key,
        )
    out: list[tuple[str, dict[str, Any]]] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{list_key}[{i}]"
        if not isinstance(item, dict):
            skipped.append(
                f"kubeconfig {path}: {where} is {_type_name(item)}, not a mapping with name and "
                f"{body_key}; it was skipped"
            )
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name:
            shown = "an empty name" if name in ("", None) else f"name {name!r:.40} (not a string)"
            skipped.append(
                f"kubeconfig {path}: {where} has {shown}; it was skipped (give it a name)"
            )
            continue
        if name in seen:
            raise KubeconfigError(
                f"kubeconfig {path}: {where}.name '{name}' is defined twice in {list_key}; "
                "remove or rename one",
                path=path,
                field=f"{where}.name",
            )
        seen.add(name)
        out.append((name, item))
    return out, skipped


def check_extension_names(path: str, doc: dict[str, Any]) -> None:
    """Fail the file when one ``extensions`` list names an extension twice (as client-go).

    Checked for the top-level list and for every cluster, user and context entry, because
    client-go's loader refuses the whole file for any of them ("duplicate name ... in list").
    """
    lists: list[tuple[str, object]] = [("extensions", doc.get("extensions"))]
    for list_key, body_key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
        items = doc.get(list_key)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            body = item.get(body_key) if isinstance(item, dict) else None
            if isinstance(body, dict):
                lists.append((f"{list_key}[{i}].{body_key}.extensions", body.get("extensions")))
    for where, raw in lists:
        if not isinstance(raw, list):
            continue
        seen: set[str] = set()
        for item in raw:
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                continue
            if name in seen:
                raise KubeconfigError(
                    f"kubeconfig {path}: {where} names extension '{name}' twice; remove or "
                    "rename one",
                    path=path,
                    field=where,
                )
            seen.add(name)


class EntryProblem(Exception):
    """An entry's contents are unusable; recorded and raised when a context needs it."""

    def __init__(self, message: str, fld: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = fld


def _type_name(value: object) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"{type(value).__name__} {value!r}"[:60]
    )


def _body(entry: dict[str, Any], key: str) -> dict[str, Any]:
    body = entry.get(key)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise EntryProblem(f"`{key}` must be a mapping, got {_type_name(body)}", key)
    return body


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise EntryProblem(f"`{key}` must be a string, got {_type_name(value)}", key)
    return value


def _opt_bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise EntryProblem(
            f"`{key}` must be true or false, got {_type_name(value)}; write it unquoted", key
        )
    return value


def _opt_path(body: dict[str, Any], key: str, base_dir: str) -> str | None:
    value = _opt_str(body, key)
    if value is None:
        return None
    value = os.path.expanduser(value)
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(base_dir, value))


def _opt_b64(body: dict[str, Any], key: str) -> bytes | None:
    value = _opt_str(body, key)
    if value is None:
        return None
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        # Never echo the value: it may be key material.
        raise EntryProblem(
            f"`{key}` is not valid base64; paste the base64 of the PEM file (`base64 -w0 FILE`)",
            key,
        ) from None


def _extensions(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("extensions")
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise EntryProblem(
            f"`extensions` must be a list of {{name, extension}}, got {_type_name(raw)}",
            "extensions",
        )
    out: dict[str, Any] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise EntryProblem(
                f"`extensions[{i}]` must be a mapping with a string name", f"extensions[{i}]"
            )
        out.setdefault(item["name"], item.get("extension"))
    return out


def parse_cluster(name: str, entry: dict[str, Any], base_dir: str) -> ClusterInfo:
    """One ``clusters[]`` item; relative paths resolve against ``base_dir``."""
    body = _body(entry, "cluster")
    server = body.get("server")
    if server is not None and not isinstance(server, str):
        raise EntryProblem(f"`server` must be a URL string, got {_type_name(server)}", "server")
    return ClusterInfo(
        name=name,
        server=server or "",
        tls_server_name=_opt_str(body, "tls-server-name"),
        insecure_skip_tls_verify=_opt_bool(body, "insecure-skip-tls-verify"),
        certificate_authority=_opt_path(body, "certificate-authority", base_dir),
        certificate_authority_data=_opt_b64(body, "certificate-authority-data"),
        proxy_url=_opt_str(body, "proxy-url"),
        disable_compression=_opt_bool(body, "disable-compression"),
        extensions=_extensions(body),
    )


def parse_user(name: str, entry: dict[str, Any], base_dir: str) -> UserInfo:
    """One ``users[]`` item, impersonation (``as*``) included."""
    body = _body(entry, "user")
    ex = None
    raw_exec = body.get("exec")
    if raw_exec is not None:
        ex = _parse_exec(raw_exec, base_dir)
    provider = body.get("auth-provider")
    if provider is not None and not isinstance(provider, dict):
        raise EntryProblem(
            f"`auth-provider` must be a mapping, got {_type_name(provider)}", "auth-provider"
        )
    return UserInfo(
        name=name,
        client_certificate=_opt_path(body, "client-certificate", base_dir),
        client_certificate_data=_opt_b64(body, "client-certificate-data"),
        client_key=_opt_path(body, "client-key", base_dir),
        client_key_data=_opt_b64(body, "client-key-data"),
        token=_opt_str(body, "token"),
        token_file=_opt_path(body, "tokenFile", base_dir),
        username=_opt_str(body, "username"),
        password=_opt_str(body, "password"),
        exec=ex,
        auth_provider=provider,
        impersonate=_opt_str(body, "as"),
        impersonate_uid=_opt_str(body, "as-uid"),
        impersonate_groups=_str_list(body, "as-groups"),
        impersonate_extra=_user_extra(body),
    )


def _str_list(body: dict[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EntryProblem(f"`{key}` must be a list of strings, got {_type_name(value)}", key)
    return tuple(value)


def _user_extra(body: dict[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``as-user-extra``: a mapping of key to a list of values (client-go's map[string][]string)."""
    raw = body.get("as-user-extra")
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise EntryProblem(
            f"`as-user-extra` must be a mapping of key to a list of strings, got {_type_name(raw)}",
            "as-user-extra",
        )
    out: list[tuple[str, tuple[str, ...]]] = []
    for key, values in raw.items():
        if not isinstance(key, str) or not isinstance(values, list):
            raise EntryProblem(
                "`as-user-extra` must be a mapping of key to a list of strings", "as-user-extra"
            )
        if not all(isinstance(v, str) for v in values):
            raise EntryProblem(f"`as-user-extra.{key}` must be a list of strings", "as-user-extra")
        out.append((key, tuple(values)))
    return tuple(out)


def clean_control_chars(text: str) -> str:
    """Escape every control character except whitespace as ``U+XXXX`` (client-go's rule).

    An ``installHint`` is shown to the user verbatim; a kubeconfig someone else wrote must
    not be able to bold, move the cursor, clear the screen or hide text with ESC sequences.
    Letters, marks, numbers, punctuation, symbols, separators, tab and newlines stay as they
    are (client-go's cleanANSIEscapeCodes, tools/clientcmd/client_config.go).
    """
    out = []
    for ch in text:
        if unicodedata.category(ch)[0] in "LMNPSZ" or ch in "\t\n\v\f\r":
            out.append(ch)
        else:
            out.append(f"U+{ord(ch):04X}")
    return "".join(out)


def _parse_exec(raw: object, base_dir: str) -> ExecConfig:
    if not isinstance(raw, dict):
        raise EntryProblem(f"`exec` must be a mapping, got {_type_name(raw)}", "exec")
    args = raw.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise EntryProblem("`exec.args` must be a list of strings", "exec.args")
    env_raw = raw.get("env") or []
    if not isinstance(env_raw, list):
        raise EntryProblem("`exec.env` must be a list of {name, value}", "exec.env")
    env: list[tuple[str, str]] = []
    for i, item in enumerate(env_raw):
        if not isinstance(item, dict):
            raise EntryProblem(f"`exec.env[{i}]` must be a mapping {{name, value}}", "exec.env")
        env_name = item.get("name") or ""
        value = item.get("value")
        if not isinstance(env_name, str) or (value is not None and not isinstance(value, str)):
            raise EntryProblem(f"`exec.env[{i}]` name and value must be strings", "exec.env")
        env.append((env_name, value or ""))
    try:
        command = _opt_str(raw, "command") or ""
        api_version = _opt_str(raw, "apiVersion") or ""
        install_hint = _opt_str(raw, "installHint")
        interactive = _opt_str(raw, "interactiveMode")
        provide = _opt_bool(raw, "provideClusterInfo")
    except EntryProblem as exc:
        raise EntryProblem(exc.message.replace("`", "`exec.", 1), "exec." + exc.field) from None
    if interactive is None and api_version.endswith("/v1beta1"):
        interactive = "IfAvailable"  # v1beta1's documented default
    return ExecConfig(
        command=command,
        args=tuple(args),
        env=tuple(env),
        api_version=api_version,
        install_hint=clean_control_chars(install_hint) if install_hint else None,
        provide_cluster_info=provide,
        interactive_mode=interactive,
        base_dir=base_dir,
    )


def parse_context(
    name: str, entry: dict[str, Any], path: str, shadowed_in: tuple[str, ...]
) -> ContextInfo:
    """One ``contexts[]`` item plus where it was defined and which files it shadows."""
    body = _body(entry, "context")
    return ContextInfo(
        name=name,
        cluster=_opt_str(body, "cluster") or "",
        user=_opt_str(body, "user") or "",
        namespace=_opt_str(body, "namespace") or "default",
        defined_in=path,
        shadowed_in=shadowed_in,
    )
