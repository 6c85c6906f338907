"""Credentials kept out of everything the tool prints, logs or renders.

A remote can be given as an rclone connection string that carries its credentials:
``:webdav,url='https://host',user=me,pass=OBSCURED:path`` (an on-the-fly backend) or
``myremote,token='{...}':path`` (a configured remote with some options overridden).
An obscured password is not encrypted (``rclone reveal`` undoes it), so such a value
must not reach stdout, a log file, a state file or a rendered job script.
:func:`redact` replaces the value of every credential parameter with ``XXX``, in a
bare remote and in any text that quotes one (rclone's own error lines do).

Which parameters are credentials is rclone's own judgement: the backend options it
marks ``Sensitive`` or ``IsPassword`` (the ones ``rclone config redacted`` hides).
Named remotes from rclone.conf carry no credentials on the command line: they are
the recommended form.
"""

from __future__ import annotations

import re

REDACTED = "XXX"

# Per backend, the options ``rclone config providers`` marks Sensitive or IsPassword.
# Generated at development time (rclone v1.75.2) with:
#   rclone config providers | python3 -c 'import json, sys; print({p["Name"]: " ".join(sorted(
#       {o["Name"] for o in p["Options"] if o.get("Sensitive") or o.get("IsPassword")}))
#       for p in json.load(sys.stdin)})'
# (backends with none left out). tests/unit/remote/test_redact.py checks it against the
# installed rclone: a newer rclone with a new credential option fails that test.
_SENSITIVE_OPTIONS = {
    "azureblob": (
        "account client_certificate_password client_id client_secret connection_string key msi_client_id "
        "msi_mi_res_id msi_object_id password sas_url tenant username"
    ),
    "azurefiles": (
        "account client_certificate_password client_id client_secret connection_string key msi_client_id "
        "msi_mi_res_id msi_object_id password sas_url tenant username"
    ),
    "b2": "account key sse_customer_key sse_customer_key_base64 sse_customer_key_md5",
    "box": "access_token client_id client_secret config_credentials impersonate root_folder_id token",
    "cache": "plex_password plex_token plex_username",
    "cloudinary": "api_key api_secret cloud_name",
    "crypt": "password password2",
    "drime": "access_token root_folder_id workspace_id",
    "drive": (
        "client_id client_secret impersonate resource_key root_folder_id service_account_credentials "
        "team_drive token"
    ),
    "dropbox": "client_id client_secret impersonate impersonate_admin token",
    "fichier": "api_key file_password folder_password",
    "filefabric": "permanent_token root_folder_id token",
    "filelu": "key",
    "filen": "api_key base_folder_uuid master_keys password private_key public_key",
    "filescom": "api_key password",
    "ftp": "host pass user",
    "gofile": "access_token account_id root_folder_id",
    "google cloud storage": (
        "access_token client_id client_secret project_number service_account_credentials token "
        "user_project"
    ),
    "google photos": "client_id client_secret token",
    "hdfs": "namenode service_principal_name username",
    "hidrive": "client_id client_secret token",
    "huaweidrive": "client_id client_secret token",
    "iclouddrive": "apple_id cookies password trust_token",
    "imagekit": "private_key public_key",
    "internetarchive": "access_key_id secret_access_key",
    "internxt": "email mnemonic pass",
    "jottacloud": "client_id client_secret token",
    "koofr": "password user",
    "linkbox": "email password token",
    "mailru": "client_id client_secret pass token user",
    "mega": "master_key pass session_id user",
    "netstorage": "account host secret",
    "onedrive": "client_id client_secret drive_id link_password root_folder_id tenant token",
    "opendrive": "password username",
    "oracleobjectstorage": "compartment namespace",
    "pcloud": "client_id client_secret password root_folder_id token username",
    "pikpak": "device_id pass root_folder_id user",
    "pixeldrain": "api_key",
    "premiumizeme": "api_key client_id client_secret token",
    "protondrive": (
        "client_access_token client_refresh_token client_salted_key_pass client_uid mailbox_password "
        "otp_secret_key password"
    ),
    "putio": "client_id client_secret token",
    "qingstor": "access_key_id secret_access_key",
    "quatrix": "api_key",
    "s3": (
        "access_key_id secret_access_key session_token sse_customer_key sse_customer_key_base64 "
        "sse_customer_key_md5 sse_kms_key_id"
    ),
    "seafile": "auth_token library_key pass url user",
    "sftp": "host key_file_pass key_pem pass user",
    "shade": "api_key",
    "sharefile": "client_id client_secret root_folder_id token",
    "sia": "api_password api_url",
    "smb": "domain host pass spn user",
    "storj": "access_grant api_key passphrase",
    "sugarsync": "access_key_id app_id authorization deleted_id private_access_key refresh_token root_id user",
    "swift": (
        "application_credential_id application_credential_name application_credential_secret auth_token "
        "domain key tenant tenant_domain tenant_id user user_id"
    ),
    "tardigrade": "access_grant api_key passphrase",
    "ulozto": "app_token password root_folder_slug username",
    "webdav": "bearer_token pass user",
    "yandex": "client_id client_secret token",
    "zoho": "client_id client_secret root_folder_id token",
}
SENSITIVE: dict[str, frozenset[str]] = {name: frozenset(opts.split()) for name, opts in _SENSITIVE_OPTIONS.items()}
# a configured remote's backend is not known from its name: every backend's credentials
ANY_BACKEND: frozenset[str] = frozenset().union(*SENSITIVE.values())

# A parameter value: quoted with ' or " (the quote doubled inside), or plain up to the
# next , or : (rclone's connection-string syntax).
_VALUE = r"""(?:"(?:[^"]|"")*"|'(?:[^']|'')*'|[^,:"'\s]*)"""
_PARAM = rf",[A-Za-z0-9_-]+(?:={_VALUE})?"
# ``name`` or ``:backend`` followed by one or more ``,key[=value]``
_HEAD = re.compile(rf"(?P<name>:?[A-Za-z0-9_.+@-]*)(?P<params>(?:{_PARAM})+)")
_ONE = re.compile(rf",(?P<key>[A-Za-z0-9_-]+)(?:=(?P<value>{_VALUE}))?")
# https://user:password@host in any value (a URL option, a log line quoting one)
_URL_PASSWORD = re.compile(r"(?P<head>://[^/@:\s'\"]+:)[^/@\s'\"]+@")


def sensitive_options(backend: str | None) -> frozenset[str]:
    """Credential option names of ``backend`` (``webdav``); every backend's when unknown."""
    return SENSITIVE.get(backend or "", ANY_BACKEND)


def redact(text: str) -> str:
    """``text`` with the value of every credential parameter of a connection string in it
    replaced by ``XXX`` (and passwords in ``scheme://user:password@`` URLs)."""
    if "," in text:
        text = _HEAD.sub(_redact_head, text)
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: m["head"] + REDACTED + "@", text)
    return text


def has_credentials(remote: str) -> bool:
    """Does ``remote`` carry a credential on its face (so it must not be written out as it is)?"""
    return redact(remote) != remote


def _redact_head(m: re.Match) -> str:
    name = m["name"]
    secret = sensitive_options(name[1:] if name.startswith(":") else None)

    def one(p: re.Match) -> str:
        key, value = p["key"], p["value"]
        if value is None:
            return p.group(0)
        if key.lower().replace("-", "_") in secret:
            return f",{key}={REDACTED}"
        if value[:1] in ("'", '"'):  # a quoted value may hold a whole connection string (remote='...')
            q = value[0]
            inner = value[1:-1].replace(q + q, q)
            return f",{key}={q}{redact(inner).replace(q, q + q)}{q}"
        return p.group(0)

    return name + _ONE.sub(one, m["params"])
