"""The error tree: context as an attribute, context-free messages, one line, no secrets."""

from __future__ import annotations

import pytest

from skymagic import errors
from skymagic.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ConflictError,
    ExecPluginError,
    ForbiddenError,
    GoneError,
    KubeconfigError,
    LaunchError,
    NotFoundError,
    PolicyError,
    ProvisionFailedError,
    RequestTimeoutError,
    SimError,
    SkymagicError,
    TransportError,
    UnauthorizedError,
    api_error_for_status,
    redact,
)


def test_str_puts_the_context_before_the_message() -> None:
    err = AuthError("tokenFile /t cannot be read (No such file)", context="gke-a")
    assert err.message == "tokenFile /t cannot be read (No such file)"
    assert err.context == "gke-a"
    assert str(err) == "context 'gke-a': tokenFile /t cannot be read (No such file)"


def test_str_without_a_context_is_the_message() -> None:
    err = ConfigError("~/.sky/config.yaml: kubernetes must be a mapping")
    assert err.context is None
    assert str(err) == err.message == "~/.sky/config.yaml: kubernetes must be a mapping"


def test_context_is_added_even_when_the_message_quotes_the_name() -> None:
    # A user named like the context must not make str() drop the context.
    err = KubeconfigError("user 'prod' (in /k) has no client-key", context="prod")
    assert str(err) == "context 'prod': user 'prod' (in /k) has no client-key"


def test_empty_context_is_no_context() -> None:
    assert str(SkymagicError("boom", context="")) == "boom"


@pytest.mark.parametrize(
    ("cls", "kind"),
    [
        (SkymagicError, "config"),
        (ConfigError, "config"),
        (KubeconfigError, "config"),
        (AuthError, "unauthorized"),
        (ExecPluginError, "exec"),
        (ApiError, "config"),
        (UnauthorizedError, "unauthorized"),
        (ForbiddenError, "forbidden"),
        (NotFoundError, "config"),
        (ConflictError, "config"),
        (GoneError, "config"),
        (TransportError, "unreachable"),
        (RequestTimeoutError, "timeout"),
        (LaunchError, "config"),
        (PolicyError, "config"),
        (SimError, "config"),
    ],
)
def test_kind(cls: type[SkymagicError], kind: str) -> None:
    assert cls.kind == kind
    assert issubclass(cls, SkymagicError)


def test_subclass_attributes_keep_the_context_out_of_the_message() -> None:
    k = KubeconfigError("cluster 'c' has no server", context="x", path="/k", field="server")
    assert (k.path, k.field, k.context) == ("/k", "server", "x")
    e = ExecPluginError("exec plugin 'aws' exited with code 1", context="x", plugin="aws")
    assert e.plugin == "aws" and str(e) == "context 'x': exec plugin 'aws' exited with code 1"
    p = ProvisionFailedError("no context could run 'job'", failures=[("a", "no GPUs")])
    assert p.failures == [("a", "no GPUs")] and p.context is None


def test_api_error_for_status_picks_the_class() -> None:
    body = {"kind": "Status", "reason": "Forbidden", "message": "nope"}
    err = api_error_for_status(403, "403 Forbidden: nope", context="c", body=body)
    assert type(err) is ForbiddenError
    assert (err.status, err.reason, err.body, err.context) == (403, "Forbidden", body, "c")
    assert str(err) == "context 'c': 403 Forbidden: nope"
    for status, cls in [(401, UnauthorizedError), (404, NotFoundError), (409, ConflictError)]:
        assert type(api_error_for_status(status, "m")) is cls
    assert type(api_error_for_status(410, "m")) is GoneError
    assert type(api_error_for_status(500, "m")) is ApiError


def test_render_traceback_is_one_red_line_with_the_context() -> None:
    err = RequestTimeoutError("timed out after 2 s waiting for https://h", context="black")
    lines = err._render_traceback_()
    assert lines == [
        "\x1b[0;31mRequestTimeoutError\x1b[0m: "
        "context 'black': timed out after 2 s waiting for https://h"
    ]
    assert ConfigError("bad flag")._render_traceback_() == [
        "\x1b[0;31mConfigError\x1b[0m: bad flag"
    ]


SECRETS = [
    ("Authorization: Bearer eyJhbGciOi.abc-DEF_123", "eyJhbGciOi"),
    ("token: s3cr3t-tok", "s3cr3t-tok"),
    ('{"clientKeyData": "LS0tLS1CRUdJTi"}', "LS0tLS1CRUdJTi"),
    ("password=hunter2", "hunter2"),
    (
        "got -----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY----- back",
        "MIIEvQIBADAN",
    ),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secrets_are_redacted_everywhere(text: str, secret: str) -> None:
    assert secret not in redact(text)
    err = AuthError(f"plugin said {text}", context="c")
    rendered = str(err) + err.message + repr(err) + "".join(err._render_traceback_())
    assert secret not in rendered
    assert "redacted" in err.message


def test_redact_keeps_ordinary_text() -> None:
    text = "tokenFile /var/run/token cannot be read (No such file or directory)"
    assert redact(text) == text


def test_every_public_error_is_exported() -> None:
    exported = {n for n in errors.__all__ if n[0].isupper()}
    defined = {
        n
        for n, v in vars(errors).items()
        if isinstance(v, type) and issubclass(v, SkymagicError) and not n.startswith("_")
    }
    assert exported == defined
