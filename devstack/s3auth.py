"""What S3 checks before it stores or serves anything, in front of moto (which checks nothing).

`S3Gateway` wraps moto's WSGI app:

- **POST Object** (a browser or client uploading with a presigned POST): the multipart form is parsed
  here as S3 parses it: every part before `file` is a form field, whether it comes as a plain part or as
  a part with a filename (as `requests.post(url, files={**fields, "file": ...})` sends it); the `file`
  part must come last and anything after it is ignored. The SigV4 signature of the policy is verified
  with the server's credentials, then the expiry and every condition (exact match, starts-with,
  content-length-range, bucket) and that no field goes unchecked. Only then does moto get the form, in
  the one shape it reads (plain fields, then the file), so it stores the object and notifies as before.
- **Every other request** (the SDKs' S3, SQS, ... calls) must be signed with SigV4, in the header or a
  presigned query, by the server's own access key: anonymous listing, reading or writing is refused.
- **CORS preflights** (OPTIONS) pass unsigned, as S3 answers them.

Refusals are S3's: its error codes, messages and statuses, as XML (`<Error><Code>...`), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData
from werkzeug.wsgi import get_input_stream

log = logging.getLogger("devstack.s3auth")

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW_SECONDS = 15 * 60  # S3's RequestTimeTooSkewed limit
MAX_POST_BODY_BYTES = 256 * 1024 * 1024  # far above any upload the app allows; S3's own limit is 5 GB
UNSIGNED_PAYLOADS = ("UNSIGNED-PAYLOAD", "STREAMING-")
# Form fields that no policy condition needs to name (S3's POST policy documentation).
UNCHECKED_FIELDS = ("file", "policy", "x-amz-signature")
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
POST_OBJECT_KEY = "devstack.post_object_key"
"""The WSGI environ entry naming the key a checked POST Object stores (for the server's durable writes)."""


@dataclass(frozen=True)
class Credentials:
    """The one access key the local server accepts (the local stack's own)."""

    access_key: str
    secret_key: str

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Credentials:
        env = os.environ if environ is None else environ
        return cls(env.get("AWS_ACCESS_KEY_ID") or "local", env.get("AWS_SECRET_ACCESS_KEY") or "local")


class S3Error(Exception):
    """A refusal as S3 words it: HTTP status, error code, message and the extra elements S3 adds."""

    def __init__(self, status: int, code: str, message: str, **details: object) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.service = "s3"  # the service the request was signed for: it decides the error's format


def _invalid_argument(message: str, name: str, value: str = "") -> S3Error:
    return S3Error(400, "InvalidArgument", message, ArgumentName=name, ArgumentValue=value)


def _malformed() -> S3Error:
    return S3Error(
        400, "MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data."
    )


def _policy_failed(condition: object) -> S3Error:
    text = json.dumps(condition, ensure_ascii=False)
    return S3Error(403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {text}")


def _access_denied() -> S3Error:
    return S3Error(403, "AccessDenied", "Access Denied")


def _unknown_access_key(access_key: str) -> S3Error:
    return S3Error(
        403,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
        AWSAccessKeyId=access_key,
    )


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """SigV4's derived key: HMAC chain over date, region, service and `aws4_request`."""
    key = f"AWS4{secret_key}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@dataclass(frozen=True)
class Scope:
    """`<access key>/<yyyymmdd>/<region>/<service>/aws4_request` of a SigV4 credential."""

    access_key: str
    date: str
    region: str
    service: str

    @classmethod
    def parse(cls, credential: str) -> Scope | None:
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or not re.fullmatch(r"\d{8}", parts[1]):
            return None
        if not all(parts[:4]):
            return None
        return cls(*parts[:4])

    def key(self, credentials: Credentials) -> bytes:
        return signing_key(credentials.secret_key, self.date, self.region, self.service)

    @property
    def text(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


# --- POST Object ------------------------------------------------------------------------------
@dataclass
class PostForm:
    """A POST Object form as S3 reads it: the fields before `file` (in order), then the file."""

    fields: list[tuple[str, str]] = field(default_factory=list)
    file_name: str | None = None  # the filename of the `file` part; None when it came as a plain part
    file_type: str | None = None
    content: bytes | None = None  # None: the form had no `file` part

    def get(self, name: str) -> str | None:
        """A field's value (field names are case-insensitive, as in S3)."""
        for key, value in self.fields:
            if key.lower() == name.lower():
                return value
        return None

    def names(self) -> list[str]:
        return [key for key, _value in self.fields]


def parse_post_form(content_type: str, body: bytes) -> PostForm:
    """Read a POST Object body the way S3 does; raise S3's error for a form it refuses."""
    mimetype, options = parse_options_header(content_type)
    if mimetype != "multipart/form-data":
        raise S3Error(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
            Condition="Bucket POST must be of the enclosure-type multipart/form-data",
        )
    boundary = options.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise _malformed()
    decoder = MultipartDecoder(boundary.encode("latin-1"))
    decoder.receive_data(body)
    decoder.receive_data(None)
    form = PostForm()
    seen: set[str] = set()
    part: Field | File | None = None
    chunks: list[bytes] = []
    try:
        while True:
            event = decoder.next_event()
            if isinstance(event, NeedData | Epilogue):
                break  # the whole body was read and no `file` part came
            if isinstance(event, Field | File):
                if not event.name:
                    raise _malformed()
                part, chunks = event, []
            elif isinstance(event, Data) and part is not None:
                chunks.append(event.data)
                if event.more_data:
                    continue
                content = b"".join(chunks)
                if part.name.lower() == "file":
                    form.content = content
                    form.file_name = part.filename if isinstance(part, File) else None
                    form.file_type = part.headers.get("Content-Type")
                    return form  # S3 ignores whatever follows the file
                name = part.name
                if name.lower() in seen:
                    raise _invalid_argument(f"The form field {name} appears more than once.", name)
                seen.add(name.lower())
                try:
                    form.fields.append((name, content.decode("utf-8")))
                except UnicodeDecodeError:
                    raise _malformed() from None
                part = None
    except ValueError:  # the decoder's word for a body that is not multipart with this boundary
        raise _malformed() from None
    return form


def _field_condition(condition: object) -> tuple[str, str, str] | None:
    """(operator, field name in lower case, value) of an eq/starts-with condition, or None."""
    if isinstance(condition, list) and len(condition) == 3:
        operator, name, value = condition
        if (
            isinstance(operator, str)
            and operator.lower() in ("eq", "starts-with")
            and isinstance(name, str)
            and name.startswith("$")
            and isinstance(value, str)
        ):
            return operator.lower(), name[1:].lower(), value
    return None


def _length_range(condition: object) -> tuple[int, int] | None:
    if isinstance(condition, list) and len(condition) == 3 and condition[0] == "content-length-range":
        try:
            low, high = int(condition[1]), int(condition[2])
        except (TypeError, ValueError):
            return None
        return low, high
    return None


def check_post(form: PostForm, bucket: str, credentials: Credentials, now: float) -> str:
    """Verify a POST Object form as S3 does; return the object's key (with `${filename}` filled in)."""
    key = form.get("key")
    if key is None:
        raise _invalid_argument(
            "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
            "key",
        )
    if form.content is None:
        raise _invalid_argument("POST requires exactly one file upload per request.", "file", "0")
    key = key.replace("${filename}", os.path.basename(form.file_name or ""))
    policy_b64 = form.get("policy")
    if policy_b64 is None:
        raise _access_denied()  # an anonymous POST: only a publicly writable bucket takes one
    if form.get("AWSAccessKeyId") is not None or form.get("signature") is not None:
        raise S3Error(
            400,
            "InvalidRequest",
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
        )
    for required in ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"):
        if form.get(required) is None:
            raise _invalid_argument(
                f"Bucket POST must contain a field named '{required}'.  "
                "If it is specified, please check the order of the fields.",
                required,
            )
    if form.get("x-amz-algorithm") != ALGORITHM:
        raise _invalid_argument(
            "Only AWS4-HMAC-SHA256 is supported.", "x-amz-algorithm", form.get("x-amz-algorithm") or ""
        )
    credential = form.get("x-amz-credential") or ""
    scope = Scope.parse(credential)
    if scope is None or scope.service != "s3":
        raise _invalid_argument(f"Invalid credential: {credential}", "x-amz-credential", credential)
    if scope.access_key != credentials.access_key:
        raise _unknown_access_key(scope.access_key)
    expected = hmac.new(scope.key(credentials), policy_b64.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, (form.get("x-amz-signature") or "").lower()):
        raise S3Error(403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH, AWSAccessKeyId=scope.access_key)

    policy = _decode_policy(policy_b64)
    expiration = _parse_expiration(policy["expiration"])
    if expiration <= now:
        raise S3Error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {name.lower(): value for name, value in form.fields}
    values["key"] = key
    values["bucket"] = bucket
    size = len(form.content)
    checked: set[str] = set()
    for condition in policy["conditions"]:
        pairs: list[tuple[object, tuple[str, str, str] | None]]
        if isinstance(condition, dict):
            pairs = [
                (
                    ["eq", f"${name}", value],
                    ("eq", str(name).lower(), value) if isinstance(value, str) else None,
                )
                for name, value in condition.items()
            ]
        elif (length := _length_range(condition)) is not None:
            low, high = length
            if size > high:
                raise S3Error(
                    400,
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size",
                    ProposedSize=size,
                    MaxSizeAllowed=high,
                )
            if size < low:
                raise S3Error(
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size",
                    ProposedSize=size,
                    MinSizeAllowed=low,
                )
            continue
        else:
            pairs = [(condition, _field_condition(condition))]
        for shown, parsed in pairs:
            if parsed is None:
                raise _policy_failed(shown)
            operator, name, wanted = parsed
            checked.add(name)
            value = values.get(name)
            if value is None:
                raise _policy_failed(shown)
            if operator == "eq":
                ok = value == wanted
            elif name == "content-type":  # a list of types: each must match (S3's rule)
                ok = all(item.strip().startswith(wanted) for item in value.split(","))
            else:
                ok = value.startswith(wanted)
            if not ok:
                raise _policy_failed(shown)
    extra = [
        name
        for name in form.names()
        if name.lower() not in checked
        and name.lower() not in UNCHECKED_FIELDS
        and not name.lower().startswith("x-ignore-")
    ]
    if extra:
        raise S3Error(
            403, "AccessDenied", f"Invalid according to Policy: Extra input fields: {', '.join(extra)}"
        )
    return key


def _decode_policy(policy_b64: str) -> dict[str, Any]:
    try:
        policy = json.loads(base64.b64decode(policy_b64, validate=True))
    except (binascii.Error, ValueError):
        raise S3Error(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from None
    if not isinstance(policy, dict):
        raise S3Error(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.")
    if "expiration" not in policy:
        raise S3Error(400, "InvalidPolicyDocument", "Invalid Policy: Policy missing expiration.")
    if not isinstance(policy.get("conditions"), list):
        raise S3Error(400, "InvalidPolicyDocument", "Invalid Policy: Policy missing conditions.")
    return policy


def _parse_expiration(value: object) -> float:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise S3Error(
            400, "InvalidPolicyDocument", f"Invalid Policy: Invalid 'expiration' value: '{value}'"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def encode_form(fields: list[tuple[str, str]], key: str, file_name: str, content: bytes) -> tuple[str, bytes]:
    """(content type, body) of the form moto reads: plain fields, `key` by its own name, the file last."""
    boundary = f"s3gateway-{uuid.uuid4().hex}"
    out = io.BytesIO()

    def disposition(name: str, extra: str = "") -> None:
        safe = name.replace("\\", "\\\\").replace('"', '\\"')
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{safe}"{extra}\r\n'.encode())

    for name, value in fields:
        if name.lower() == "key":
            name, value = "key", key
        disposition(name)
        out.write(b"\r\n" + value.encode() + b"\r\n")
    safe_file = file_name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")
    disposition("file", f'; filename="{safe_file}"')
    out.write(b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", out.getvalue()


# --- Signed requests --------------------------------------------------------------------------
@dataclass(frozen=True)
class SignedBy:
    """What a verified request was signed for."""

    service: str
    region: str


def _raw_path(environ: dict[str, Any]) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        if "://" in raw:
            raw = urlsplit(raw).path
        return raw.split("?", 1)[0] or "/"
    path = environ.get("PATH_INFO", "/")
    return quote(path.encode("latin-1").decode("utf-8", "replace"), safe="/~")


def canonical_path(environ: dict[str, Any], service: str) -> str:
    """The path as the SDKs sign it: S3 encodes each key once; other services encode the path again."""
    raw = _raw_path(environ)
    if service == "s3":
        return quote(unquote(raw), safe="/~")
    from botocore.utils import normalize_url_path

    return quote(normalize_url_path(raw), safe="/~")


def canonical_query(query_string: str, *, drop: str | None = None) -> str:
    pairs = []
    for pair in query_string.split("&") if query_string else []:
        if not pair:
            continue
        name, _, value = pair.partition("=")
        name, value = quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")
        if drop is not None and name == drop:
            continue
        pairs.append((name, value))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _header(environ: dict[str, Any], name: str) -> str | None:
    if name == "content-type":
        return environ.get("CONTENT_TYPE")
    if name == "content-length":
        return environ.get("CONTENT_LENGTH")
    value = environ.get("HTTP_" + name.upper().replace("-", "_"))
    # WSGI hands header values over as latin-1; clients sign the UTF-8 text
    return None if value is None else str(value).encode("latin-1").decode("utf-8", "replace")


def _parse_amz_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class _Authorization:
    """The SigV4 parts of a request, from its Authorization header or its presigned query."""

    scope: Scope
    signed_headers: list[str]
    signature: str
    timestamp: str
    expires: str | None  # X-Amz-Expires of a presigned URL; None for a header-signed request


def _query_params(query: str) -> dict[str, str]:
    return {unquote(k): unquote(v) for k, _, v in (pair.partition("=") for pair in query.split("&") if pair)}


def _authorization(environ: dict[str, Any]) -> _Authorization:
    header = environ.get("HTTP_AUTHORIZATION", "")
    params = _query_params(environ.get("QUERY_STRING", ""))
    if header:
        scheme, _, rest = header.partition(" ")
        if scheme != ALGORITHM:
            raise S3Error(
                400,
                "InvalidRequest",
                "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
            )
        items = {
            name.strip(): value.strip()
            for name, _, value in (item.partition("=") for item in rest.split(","))
        }
        credential, signed, signature = (
            items.get(n, "") for n in ("Credential", "SignedHeaders", "Signature")
        )
        timestamp, expires = _header(environ, "x-amz-date") or "", None
    elif "X-Amz-Signature" in params or "X-Amz-Credential" in params:
        if params.get("X-Amz-Algorithm") != ALGORITHM:
            raise S3Error(
                400, "AuthorizationQueryParametersError", 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"'
            )
        credential, signed, signature = (
            params.get(n, "") for n in ("X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Signature")
        )
        timestamp, expires = params.get("X-Amz-Date", ""), params.get("X-Amz-Expires", "")
    else:
        raise _access_denied()  # anonymous: no bucket here is public
    scope = Scope.parse(credential)
    if scope is None or not signed or not signature:
        raise S3Error(
            400,
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed; the Credential is mal-formed.",
        )
    names = [name.strip().lower() for name in signed.split(";") if name.strip()]
    return _Authorization(scope, names, signature.lower(), timestamp, expires)


def check_signed_request(
    environ: dict[str, Any], body: bytes, credentials: Credentials, now: float
) -> SignedBy:
    """Verify a request's SigV4 signature (Authorization header or presigned query) as AWS does."""
    auth = _authorization(environ)
    try:
        _check_signature(environ, body, credentials, now, auth)
    except S3Error as error:
        error.service = auth.scope.service
        raise
    return SignedBy(auth.scope.service, auth.scope.region)


def _check_signature(
    environ: dict[str, Any], body: bytes, credentials: Credentials, now: float, auth: _Authorization
) -> None:
    scope = auth.scope
    if scope.access_key != credentials.access_key:
        raise _unknown_access_key(scope.access_key)
    timestamp = auth.timestamp
    signed_at = _parse_amz_date(timestamp)
    if signed_at is None and auth.expires is None and (signed_at := _http_date(_header(environ, "date"))):
        timestamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(signed_at))
    if signed_at is None:
        raise S3Error(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
    if auth.expires is not None:
        if not auth.expires.isdigit():
            raise S3Error(400, "AuthorizationQueryParametersError", "X-Amz-Expires should be a number")
        if now > signed_at + int(auth.expires):
            raise S3Error(403, "AccessDenied", "Request has expired", X_Amz_Expires=auth.expires)
        if signed_at > now + MAX_CLOCK_SKEW_SECONDS:
            raise S3Error(403, "AccessDenied", "Request is not valid yet")
    elif abs(now - signed_at) > MAX_CLOCK_SKEW_SECONDS:
        raise S3Error(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )

    declared = _header(environ, "x-amz-content-sha256")
    if declared:
        payload = declared
        if (
            re.fullmatch(r"[0-9a-fA-F]{64}", declared)
            and hashlib.sha256(body).hexdigest() != declared.lower()
        ):
            raise S3Error(
                400,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
    elif auth.expires is not None and scope.service == "s3":
        payload = "UNSIGNED-PAYLOAD"  # what the SDKs sign in a presigned S3 URL
    else:
        payload = hashlib.sha256(body).hexdigest()
    canonical = "\n".join(
        [
            environ.get("REQUEST_METHOD", "GET").upper(),
            canonical_path(environ, scope.service),
            canonical_query(
                environ.get("QUERY_STRING", ""), drop="X-Amz-Signature" if auth.expires else None
            ),
            "".join(
                f"{name}:{' '.join((_header(environ, name) or '').split())}\n" for name in auth.signed_headers
            ),
            ";".join(auth.signed_headers),
            payload,
        ]
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    string_to_sign = "\n".join([ALGORITHM, timestamp, scope.text, digest])
    expected = hmac.new(scope.key(credentials), string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, auth.signature):
        log.info("signature mismatch; the canonical request was:\n%s", canonical)
        raise S3Error(403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH, AWSAccessKeyId=scope.access_key)


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


# --- The gateway ------------------------------------------------------------------------------
_BUCKET_PATH = re.compile(r"^/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/?$")


class S3Gateway:
    """WSGI middleware in front of moto's app: S3's checks, then moto (see the module docstring)."""

    def __init__(
        self,
        app: WSGIApp,
        credentials: Credentials,
        *,
        allowed_origin: str = "*",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.allowed_origin = allowed_origin
        self.clock = clock

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            method = environ.get("REQUEST_METHOD", "GET").upper()
            if method == "OPTIONS":  # CORS preflight: S3 answers it without credentials
                return self.app(environ, start_response)
            bucket = self._post_object_bucket(environ, method)
            if bucket is not None:
                self._rewrite_post_object(environ, bucket)
            else:
                check_signed_request(environ, self._read_body(environ), self.credentials, self.clock())
        except S3Error as error:
            return self._refuse(environ, start_response, error)
        return self.app(environ, start_response)

    @staticmethod
    def _post_object_bucket(environ: dict[str, Any], method: str) -> str | None:
        """The bucket of an unsigned POST to a bucket's root (S3's POST Object), else None."""
        if method != "POST" or environ.get("HTTP_AUTHORIZATION") or environ.get("QUERY_STRING"):
            return None
        match = _BUCKET_PATH.match(environ.get("PATH_INFO", ""))
        return match.group(1) if match else None

    def _rewrite_post_object(self, environ: dict[str, Any], bucket: str) -> None:
        length = environ.get("CONTENT_LENGTH", "")
        if not length.isdigit():
            raise S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
        if int(length) > MAX_POST_BODY_BYTES:
            raise S3Error(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                ProposedSize=length,
                MaxSizeAllowed=MAX_POST_BODY_BYTES,
            )
        body = self._read_body(environ)
        form = parse_post_form(environ.get("CONTENT_TYPE", ""), body)
        key = check_post(form, bucket, self.credentials, self.clock())
        environ[POST_OBJECT_KEY] = key
        assert form.content is not None  # check_post refuses a form without a file
        content_type, rewritten = encode_form(form.fields, key, form.file_name or "", form.content)
        environ["CONTENT_TYPE"] = content_type
        self._set_body(environ, rewritten)

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        body = get_input_stream(environ, safe_fallback=True).read()
        self._set_body(environ, body)
        return bytes(body)

    @staticmethod
    def _set_body(environ: dict[str, Any], body: bytes) -> None:
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input_terminated"] = False
        environ.pop("HTTP_TRANSFER_ENCODING", None)

    def _refuse(
        self, environ: dict[str, Any], start_response: Callable[..., Any], error: S3Error
    ) -> Iterable[bytes]:
        request_id = uuid.uuid4().hex[:16].upper()
        service = error.service
        if service != "s3" and error.code == "InvalidAccessKeyId":  # the other services' word for it
            error = S3Error(
                403, "InvalidClientTokenId", "The security token included in the request is invalid."
            )
        json_protocol = bool(environ.get("HTTP_X_AMZ_TARGET")) or "amz-json" in environ.get(
            "CONTENT_TYPE", ""
        )
        if service != "s3" and json_protocol:
            content_type = "application/x-amz-json-1.0"
            body = json.dumps({"__type": error.code, "message": error.message}).encode()
            extra = [("x-amzn-query-error", f"{error.code};Sender"), ("x-amzn-RequestId", request_id)]
        elif service != "s3":
            content_type = "text/xml"
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{escape(error.code)}</Code>"
                f"<Message>{escape(error.message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
            extra = [("x-amzn-RequestId", request_id)]
        else:
            content_type = "application/xml"
            details = "".join(
                f"<{name.replace('_', '-')}>{escape(str(value))}</{name.replace('_', '-')}>"
                for name, value in error.details.items()
            )
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
                f"{details}<RequestId>{request_id}</RequestId><HostId>local</HostId></Error>"
            ).encode()
            extra = [("x-amz-request-id", request_id)]
        if environ.get("REQUEST_METHOD", "").upper() == "HEAD":
            body = b""
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra]
        origin = environ.get("HTTP_ORIGIN")
        if origin and self.allowed_origin in ("*", origin):
            # The browser must be able to read why its upload was refused (the web client shows it).
            headers += [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        log.info(
            "refused %s %s: %s %s",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
            error.code,
            error.message,
        )
        start_response(f"{error.status} {_REASONS.get(error.status, 'Error')}", headers)
        return [body]


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    411: "Length Required",
    412: "Precondition Failed",
}
