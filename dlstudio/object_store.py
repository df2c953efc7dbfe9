"""An object store behind DLSTUDIO_STORAGE_URL, through a Django storage backend: django-storages' S3 backend
for `s3://BUCKET/PREFIX` (any S3-compatible endpoint), its Azure backend for `azure://CONTAINER/PREFIX`, and
Django's own FileSystemStorage for `file:///a/folder/elsewhere` (docs/STORAGE.md).

Only names and bytes cross this module: what is stored under which name, and how a whole file goes up or
comes down (streamed from and to disk: large files go in multipart transfers, never whole in memory). What
the names mean (manifests, objects) is `dlstudio.storage`'s.
"""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from django.core.files import File
from django.core.files.base import ContentFile

# Transfers: parts of 16 MiB, four at a time, so an upload or a download holds at most 64 MiB in memory.
PART_BYTES = 16 * 2**20
CONCURRENCY = 4
PROBE = ".dlstudio-probe"


class StoreError(Exception):
    """A store that cannot be used as configured; the message is one sentence naming the setting."""


class Store:
    """A store seen through a Django storage backend."""

    def __init__(self, backend, *, url: str):
        self.backend, self.url = backend, url

    def upload(self, path: Path, name: str) -> None:
        with open(path, "rb") as f:
            self.backend.save(name, File(f, name=name))

    def download(self, name: str, target: Path) -> None:
        with self.backend.open(name, "rb") as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out, PART_BYTES)

    def read(self, name: str) -> bytes | None:
        """The object's bytes, or None when there is none."""
        try:
            with self.backend.open(name, "rb") as f:
                return f.read()
        except Exception:
            if not self.backend.exists(name):
                return None
            raise

    def write(self, name: str, data: bytes) -> None:
        self.backend.save(name, ContentFile(data, name=name))

    def delete(self, name: str) -> None:
        self.backend.delete(name)

    def names(self, folder: str) -> list[str]:
        """The files directly in `folder` ([] for none)."""
        try:
            return list(self.backend.listdir(folder)[1])
        except FileNotFoundError:
            return []

    def check(self) -> None:
        """Write, read back and delete a small object: the store answers, the keys may write, the bucket is there."""
        # A name of its own: machines that start together would otherwise delete each other's probe.
        probe = f"{PROBE}-{uuid.uuid4().hex}"
        try:
            self.write(probe, b"ok")
            if self.read(probe) != b"ok":
                raise StoreError(f"The object store of DLSTUDIO_STORAGE_URL={self.url} did not give back what was "
                                 "written to it; check that nothing else rewrites its objects.")
            self.delete(probe)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(self.explain(exc)) from exc

    def explain(self, exc: Exception) -> str:
        return (f"The store of DLSTUDIO_STORAGE_URL={self.url} cannot be used: {exc}; check that the folder "
                "exists and this user may write to it.")


class S3Store(Store):
    """Downloads go straight to disk in parts (django-storages' file object would spool the whole object first)."""

    def download(self, name: str, target: Path) -> None:
        key = self.backend._normalize_name(name)
        self.backend.bucket.Object(key).download_file(str(target), Config=self.backend.transfer_config)

    def read(self, name: str) -> bytes | None:
        from botocore.exceptions import ClientError  # noqa: PLC0415 (the SDKs load only where that store is used)

        try:
            return self.backend.bucket.Object(self.backend._normalize_name(name)).get()["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    def explain(self, exc: Exception) -> str:
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError  # noqa: PLC0415 (the SDKs load only where that store is used)

        endpoint = self.backend.endpoint_url or "the default AWS endpoint"
        if isinstance(exc, EndpointConnectionError) or "Connect timeout" in str(exc):
            return (f"Nothing answers at AWS_ENDPOINT_URL={endpoint}; check the address and that its port is "
                    "reachable from this machine.")
        if isinstance(exc, NoCredentialsError):
            return "The object store needs keys: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket", "404"):
                return (f"The bucket {self.backend.bucket_name!r} of DLSTUDIO_STORAGE_URL does not exist at "
                        f"{endpoint}; create it, or correct the URL.")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "InvalidToken"):
                return (f"The object store at {endpoint} refused the keys ({code}): check AWS_ACCESS_KEY_ID and "
                        f"AWS_SECRET_ACCESS_KEY, and that they may read and write the bucket "
                        f"{self.backend.bucket_name!r}.")
        return f"The object store of DLSTUDIO_STORAGE_URL at {endpoint} cannot be used: {exc}."


class AzureStore(Store):
    def download(self, name: str, target: Path) -> None:
        with open(target, "wb") as out:
            self.backend.client.download_blob(self.backend._get_valid_path(name), timeout=self.backend.timeout,
                                              max_concurrency=CONCURRENCY).readinto(out)

    def explain(self, exc: Exception) -> str:
        name = type(exc).__name__
        if name in ("ServiceRequestError", "ServiceRequestTimeoutError"):
            return ("Nothing answers at the endpoint of AZURE_CONNECTION_STRING; check the address and that its "
                    "port is reachable from this machine.")
        if name == "ResourceNotFoundError":
            return (f"The container {self.backend.azure_container!r} of DLSTUDIO_STORAGE_URL does not exist; "
                    "create it, or correct the URL.")
        if name in ("ClientAuthenticationError", "HttpResponseError") and "auth" in str(exc).lower():
            return "The object store refused the account key of AZURE_CONNECTION_STRING; check it."
        return f"The object store of DLSTUDIO_STORAGE_URL cannot be used: {str(exc).splitlines()[0]}."


def from_settings(settings) -> Store | None:
    """The store DLSTUDIO_STORAGE_URL names, or None when it is the data dir itself (files used in place)."""
    url = settings.STORAGE_URL
    if not url:
        return None
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    if parts.scheme == "file":
        folder = Path(parts.netloc + parts.path).resolve()
        if folder == Path(settings.DATA_DIR).resolve():
            return None
        from django.core.files.storage import FileSystemStorage  # noqa: PLC0415 (the SDKs load only where that store is used)

        folder.mkdir(parents=True, exist_ok=True)
        return Store(FileSystemStorage(location=str(folder), allow_overwrite=True), url=url)
    if parts.scheme == "s3":
        from boto3.s3.transfer import TransferConfig  # noqa: PLC0415 (the SDKs load only where that store is used)
        from botocore.config import Config  # noqa: PLC0415 (the SDKs load only where that store is used)
        from storages.backends.s3 import S3Storage  # noqa: PLC0415 (the SDKs load only where that store is used)

        # A store that does not answer is said at once (a few seconds), not after minutes of retries.
        client = Config(connect_timeout=5, read_timeout=120, retries={"max_attempts": 3, "mode": "standard"},
                        s3={"addressing_style": "path"} if settings.AWS_ENDPOINT_URL else None)
        transfer = TransferConfig(multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES,
                                  max_concurrency=CONCURRENCY)
        backend = S3Storage(bucket_name=parts.netloc, location=prefix, endpoint_url=settings.AWS_ENDPOINT_URL,
                            access_key=settings.AWS_ACCESS_KEY_ID, secret_key=settings.AWS_SECRET_ACCESS_KEY,
                            region_name=settings.AWS_DEFAULT_REGION, client_config=client,
                            transfer_config=transfer, file_overwrite=True, default_acl=None)
        return S3Store(backend, url=url)
    from storages.backends.azure_storage import AzureStorage  # noqa: PLC0415 (the SDKs load only where that store is used)

    if not settings.AZURE_CONNECTION_STRING:
        raise StoreError("An azure:// DLSTUDIO_STORAGE_URL needs AZURE_CONNECTION_STRING, the storage account's "
                         "connection string.")
    backend = AzureStorage(azure_container=parts.netloc, location=prefix, overwrite_files=True,
                           connection_string=settings.AZURE_CONNECTION_STRING, max_memory_size=PART_BYTES,
                           upload_max_conn=CONCURRENCY)
    return AzureStore(backend, url=url)
